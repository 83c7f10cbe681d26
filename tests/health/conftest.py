from tests.health.world import world  # noqa: F401  (a pytest fixture)
from tests.notify.receiver import receiver  # noqa: F401  (a pytest fixture)
