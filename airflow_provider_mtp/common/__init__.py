"""Primitives shared by the client and the emulator: one small module per concept, each tested once.

This is the bottom layer of the package. Its modules import only the standard library and
pendulum: never Airflow, never another part of the provider. The emulator may import it, so the
server and the client read times, durations, hosts and tokens the same way.

* :mod:`~airflow_provider_mtp.common.ticks`: times as 100-ns ticks since the Unix epoch.
* :mod:`~airflow_provider_mtp.common.durations`: ISO 8601 durations (via pendulum).
* :mod:`~airflow_provider_mtp.common.hosts`: whether a host name is a loopback address.
* :mod:`~airflow_provider_mtp.common.jwt_claims`: the claims of a JWT, read without verifying it.
* :mod:`~airflow_provider_mtp.common.utc`: a standard-library UTC ``datetime`` from any aware one.
"""
