"""Governance: data-quality checks (parity, integrity, drift, volume), pipeline and platform health,
alerts on transitions and the daily health report. Library code; `defs/governance.py` wires it for this platform.
"""
