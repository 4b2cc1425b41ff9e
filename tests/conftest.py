"""Suite-wide settings: Hypothesis profiles. Shared helpers live in tests/support.py."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# "ci" keeps the whole suite well inside its time budget on a 2-core machine;
# HYPOTHESIS_PROFILE=thorough digs deeper when run by hand.
settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
