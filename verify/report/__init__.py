"""Reporting on runs: the run document (JSON), JUnit XML, and Markdown/HTML reports.

- :mod:`~robustprop.verify.report.document` — the JSON document of ``verify run --json``;
- :mod:`~robustprop.verify.report.model` — checked run records, grouped into sections;
- :mod:`~robustprop.verify.report.load` — run documents read back and checked;
- :mod:`~robustprop.verify.report.junit` — JUnit XML, one test case per point;
- :mod:`~robustprop.verify.report.markdown` and :mod:`~robustprop.verify.report.plots` — the
  report's text and figures, written together by :mod:`~robustprop.verify.report.render`.

Above :mod:`robustprop.verify.run`, below :mod:`robustprop.verify.experiment`.
"""

from robustprop.verify.report.document import summary, sweep_document, to_json, write_json
from robustprop.verify.report.junit import junit_tree, write_junit, write_junit_runs
from robustprop.verify.report.load import load_runs, parse_document
from robustprop.verify.report.model import Figure, PointRecord, RunRecord, Section, sections
from robustprop.verify.report.render import check_output_path, report_format, write_report

__all__ = [
    "Figure",
    "PointRecord",
    "RunRecord",
    "Section",
    "check_output_path",
    "junit_tree",
    "load_runs",
    "parse_document",
    "report_format",
    "sections",
    "summary",
    "sweep_document",
    "to_json",
    "write_json",
    "write_junit",
    "write_junit_runs",
    "write_report",
]
