"""The console and the API word a finding's steps for the web: the console's buttons and forms,
never a shell command (the CLI's ``diagnose`` keeps its commands)."""

from __future__ import annotations

import re
from typing import Any

from adesync.health.messages import DEFAULT_DOCS_URL
from adesync.web.roles import Role
from tests.sim_fixtures import RunningSimulator
from tests.web.conftest import Web
from tests.web.test_api import API, add_token
from tests.web.test_console import sign_in

RENEW = "Renew: upload the new token (.p7m)"
RENEW_ZH = "续订：上传新令牌 (.p7m)"
COMMAND = re.compile(r"`|adesync (tokens|sync|serve|worker|diagnose|profiles|devices|notify)\b")


async def rejected_token(web: Web, simulator: RunningSimulator, name: str) -> None:
    """NAME added and then revoked at Apple; a check now stores ``token_rejected``."""
    server_uuid = await add_token(web, simulator, name, devices=2)
    simulator.sim.revoke_token(server_uuid)
    checked = await web.client.post(
        f"{API}/tokens/{name}/check", headers=web.as_role(Role.OPERATOR)
    )
    assert checked.status_code == 200, checked.text


def steps_of(findings: list[dict[str, Any]], code: str) -> list[str]:
    (finding,) = [f for f in findings if f["code"] == code]
    return list(finding["remediation"])


async def test_the_api_words_a_rejected_tokens_steps_for_the_web(
    web: Web, simulator: RunningSimulator
) -> None:
    await rejected_token(web, simulator, "north")
    viewer = web.as_role(Role.VIEWER)
    report = (await web.client.get(f"{API}/health", headers=viewer)).json()
    steps = steps_of(report["findings"], "token_rejected")
    assert any(RENEW in step for step in steps), steps
    assert not any(COMMAND.search(step) for step in steps), steps
    assert report["alert"] is not None and not COMMAND.search(report["alert"]["text"])
    findings = (await web.client.get(f"{API}/tokens/north/findings", headers=viewer)).json()
    assert steps_of(findings, "token_rejected") == steps
    chinese = (await web.client.get(f"{API}/health?lang=zh-CN", headers=viewer)).json()
    steps = steps_of(chinese["findings"], "token_rejected")
    assert any(RENEW_ZH in step for step in steps), steps
    assert not any(COMMAND.search(step) for step in steps), steps
    assert not any(COMMAND.search(finding["detail"]) for finding in chinese["findings"])


async def test_the_console_shows_a_rejected_tokens_steps_with_its_buttons(
    web: Web, simulator: RunningSimulator
) -> None:
    await rejected_token(web, simulator, "north")
    await sign_in(web, role=Role.VIEWER)
    page = (await web.client.get("/tokens/north")).text
    findings = page[
        page.index('id="findings"') : page.index("</section>", page.index('id="findings"'))
    ]
    assert 'id="finding-token_rejected"' in findings
    assert RENEW in findings and "ask your operator" in findings
    assert not COMMAND.search(findings), COMMAND.search(findings)
    for path in ("/health", DEFAULT_DOCS_URL):
        assert not COMMAND.search((await web.client.get(path)).text), path


def test_no_console_text_names_a_shell_command() -> None:
    """The console's own catalogue (buttons, messages, the errors of actions) in every
    language: a visitor is never told to run a command."""
    from adesync.web.i18n import load_catalogues

    for lang, messages in load_catalogues().messages.items():
        offending = {key: text for key, text in messages.items() if COMMAND.search(text)}
        assert offending == {}, lang


def test_the_web_words_no_error_of_an_action_as_a_shell_command() -> None:
    """Every error of the token actions whose CLI wording names a command or flag is worded
    without one for the API and the console."""
    from datetime import UTC, datetime

    from adesync.commands.wording import cli_words
    from adesync.services import token_errors as errors
    from adesync.sync.clients import NoCredentials
    from adesync.web.i18n import load_catalogues
    from adesync.web.wording import api_words, console_words

    samples = [
        errors.TokenNotFound("north"),
        errors.KeyPairMissing("north"),
        errors.KeyPairDamaged("north", "active"),
        errors.TokenFileForeign("north"),
        errors.TokenFileExpired(datetime(2026, 1, 1, tzinfo=UTC)),
        errors.TokenAlreadyAdded("north", holds_token=True),
        errors.TokenNotAdded("north"),
        errors.DuplicateServer("south", "UUID-1", "South MDM"),
        errors.DifferentServer("north", reason="consumer_key"),
        errors.DifferentServer("north", reason="server_uuid", new_server="A", old_server="B"),
        errors.TokenChanged("north"),
        errors.OptionInvalid("dep_url", "ftp://x", "an http(s) URL"),
        NoCredentials("north"),
    ]
    flags = re.compile(r"--\w")
    for lang in ("en", "zh-CN"):
        t = load_catalogues().translator(lang)
        for error in samples:
            for words in (api_words(error), console_words(t, error)):
                assert not COMMAND.search(words) and not flags.search(words), words
    assert any(COMMAND.search(cli_words(e)) or flags.search(cli_words(e)) for e in samples)
