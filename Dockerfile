# The Airflow image of the docker-compose stack: stock Airflow 3.3.2 plus this provider's wheel.
#
#   make dist && docker compose up
#
# `make dist` builds the wheel into dist/; `docker compose up` builds this image from it (once; use
# `docker compose build` after a new `make dist`) and starts the stack in docker-compose.yaml.
# Every Airflow container runs this image, and so does the emulator: the `[emulator]` extra is
# installed here too, so there is one image to build.
FROM apache/airflow:3.3.2-python3.11

# Exactly one wheel: `make dist` empties dist/ first. If none was built, the COPY below fails with
# "no source files were specified": run `make dist`.
COPY dist/airflow_provider_mtp-*.whl /tmp/

# Pinning apache-airflow to the image's own version (AIRFLOW_VERSION is set by the base image) keeps
# pip from moving Airflow while it resolves the provider's dependencies. The wheel path is taken
# from the glob first: "<glob>[emulator]" would be read as a glob character class.
# The http provider is for the example DAGs (the triage DAG posts a summary with HttpOperator).
RUN set -eu; \
    set -- /tmp/airflow_provider_mtp-*.whl; \
    if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then \
        echo "expected exactly one airflow_provider_mtp wheel in dist/, found: $*; run 'make dist'" >&2; \
        exit 1; \
    fi; \
    pip install --no-cache-dir \
        "apache-airflow==${AIRFLOW_VERSION}" \
        "$1[emulator]" \
        apache-airflow-providers-http; \
    rm -f /tmp/airflow_provider_mtp-*.whl

USER root
# /emulator-state becomes the `emulator-state` named volume. Docker seeds a new named volume from
# the image's directory, owner included, so creating it here (owned by airflow, group 0 like the
# rest of the image) lets the emulator, which runs as the airflow user, write its CA into it.
# The SimpleAuthManager password file gives the UI a known login, admin / admin: a local
# development stack only. The api-server may add users to it, hence group-writable.
RUN mkdir -p /emulator-state \
    && chown airflow:0 /emulator-state \
    && chmod 2775 /emulator-state \
    && echo '{"admin": "admin"}' > /opt/airflow/simple_auth_manager_passwords.json \
    && chown airflow:0 /opt/airflow/simple_auth_manager_passwords.json \
    && chmod 0664 /opt/airflow/simple_auth_manager_passwords.json
USER airflow
