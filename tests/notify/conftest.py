from tests.notify.receiver import receiver  # noqa: F401  (a pytest fixture)
from tests.web.conftest import web  # noqa: F401  (a pytest fixture)
