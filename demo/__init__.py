"""The ``make demo`` driver: every example DAG against the Defender XDR emulator (``python -m demo``)."""
