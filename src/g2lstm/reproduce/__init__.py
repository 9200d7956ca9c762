"""``g2lstm reproduce``: the paper's whole study in one command, with a report.

- :mod:`~g2lstm.reproduce.plan`: scales (``tiny``/``cpu``/``paper``) and the ordered steps;
- :mod:`~g2lstm.reproduce.run`: runs a plan, skipping finished steps, with progress and ETA;
- :mod:`~g2lstm.reproduce.steps_lm`, :mod:`~g2lstm.reproduce.steps_mt`: what each step does,
  through :mod:`g2lstm.lm`, :mod:`g2lstm.mt`, :mod:`g2lstm.compress`, :mod:`g2lstm.analysis`;
- :mod:`~g2lstm.reproduce.collect`, :mod:`~g2lstm.reproduce.report`,
  :mod:`~g2lstm.reproduce.verdicts`: numbers, ``report.md``/``report.html`` and verdicts
  (sections in :mod:`~g2lstm.reproduce.report_tables` and
  :mod:`~g2lstm.reproduce.report_gates`; the plan's step: :mod:`~g2lstm.reproduce.steps_report`);
- :mod:`~g2lstm.reproduce.paper`: the paper's own numbers, with their tables.

Heavy dependencies (torch models, matplotlib) are imported only when a step runs.
"""

from __future__ import annotations

from g2lstm.reproduce.plan import SCALES, Scale, Step, build_plan, format_plan, get_scale

__all__ = ["SCALES", "Scale", "Step", "build_plan", "format_plan", "get_scale"]
