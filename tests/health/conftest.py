from tests.notify.receiver import receiver  # noqa: F401  (a pytest fixture)
