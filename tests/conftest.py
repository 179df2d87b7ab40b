"""Hypothesis without its clocks: a per-example deadline (200 ms by default) and the too-slow
health check are timing assertions, which CPU starvation fails (two test_arch properties did,
under load); what the properties assert is unchanged. pytest-timeout still bounds each test."""

from hypothesis import HealthCheck, settings

settings.register_profile("no-clocks", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("no-clocks")
