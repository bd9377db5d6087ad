"""Anti-cheat: score every player's stream, raise explained alerts.

Pure cores (:mod:`anticheat.features`, :mod:`anticheat.rules`, the policy in
:mod:`anticheat.model`) are kept apart from the asyncio edge
(:mod:`anticheat.consumer`), so scoring can be tested and replayed offline
exactly as it runs live. Heavy imports (scikit-learn, matplotlib) are left to
the modules that need them so ``gamebus --help`` stays fast.
"""

__all__: list[str] = []
