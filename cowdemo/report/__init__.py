"""A shareable report of the whole loop: one self-contained HTML file (and a PDF of it) that
compares models on a dataset and a tracked video, built from the stored runs.

    from cowdemo.report import ReportInputs, make_report, write_html, html_to_pdf
    report = make_report(ReportInputs("cows", ["frcnn-r50-fpn-coco", "cows-finetuned"],
                                      video="cows.mp4"))
    write_html(report, "report.html"); html_to_pdf("report.html", "report.pdf")
"""

from cowdemo.report.build import ReportInputs, build_report, describe_version, make_report
from cowdemo.report.document import Chart, Gallery, Report, Section, Table, Text, thumbnail
from cowdemo.report.html import render_html, write_html
from cowdemo.report.pdf import html_to_pdf, report_pdf_bytes

__all__ = [
    "Chart", "Gallery", "Report", "ReportInputs", "Section", "Table", "Text", "build_report",
    "describe_version", "html_to_pdf", "make_report", "render_html", "report_pdf_bytes",
    "thumbnail", "write_html",
]  # fmt: skip
