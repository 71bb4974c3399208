"""The code that builds the synthetic tenant from :mod:`airflow_provider_mtp.emulator.tenant_data`; the entry point is :func:`airflow_provider_mtp.emulator.tenant.build_tenant`."""
