"""Settings shared by the property-based fuzz tests (tests/test_fuzz_*.py).

By default every property tries a few hundred inputs, the same ones on every run
(derandomized), so CI stays bounded and reproducible. `HYPOTHESIS_PROFILE=deep` tries many
more, freshly random each run, for a hand-started hunt:

    HYPOTHESIS_PROFILE=deep python -m pytest -p no:cacheprovider tests/test_fuzz_*.py \
        --hypothesis-show-statistics

(With the schemathesis pytest plugin installed, as on some dev machines, add
`-p no:schemathesis`: it blanks the falsifying input in failure reports.)

Nothing is written into the repository: no example database, and Hypothesis' own cache
lives in the system's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "alert-router-hypothesis")

with warnings.catch_warnings():
    # Hypothesis imports this when a property fails (to suggest a patch); a dependency of it
    # warns on import, and under `filterwarnings = error` that would turn the failure's
    # report into an INTERNALERROR that hides the failing input. Imported once, quietly.
    warnings.simplefilter("ignore", DeprecationWarning)
    # It needs libcst, which the test lock does not pin: without it there is nothing to warn.
    with contextlib.suppress(ImportError):
        import hypothesis.extra._patching  # noqa: F401

_COMMON = settings(
    database=None,
    # Each input of a webhook property is an HTTP round trip through the running service:
    # no per-input deadline, and a fixture shared by every input is what we want.
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=False,
)
settings.register_profile("fuzz", parent=_COMMON, max_examples=300, derandomize=True)
settings.register_profile("deep", parent=_COMMON, max_examples=20_000)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "fuzz")
if PROFILE not in ("fuzz", "deep"):
    PROFILE = "fuzz"
FUZZ = settings.get_profile(PROFILE)
# A property's whole run, as pytest-timeout sees it: the deep profile runs for long.
TIMEOUT = 3600 if PROFILE == "deep" else 300
