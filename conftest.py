"""Settings for the whole test suite."""

from hypothesis import settings

# Property tests check behaviour, never speed: no per-example deadline, since the suite
# runs in two workers on a shared 2-core machine and a slow example is not a failure.
settings.register_profile("mailwright", deadline=None)
settings.load_profile("mailwright")
