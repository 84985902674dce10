"""Panel 3's results table: one block per task setup, each row a sentence, learngene first, paired with scratch."""

from __future__ import annotations

import html

from core.individual.twins import is_twin
from explorer.individual.results import GLOSSARY, reading_html

STRATEGIES = (
    "<div style='color:#555;font-size:12px;max-width:1000px;line-height:1.45'><b>Strategies.</b> <b>learngene</b> "
    "(the paper): the chosen block of the collective model, inherited behind a new front and head. "
    "<b>scratch</b>: the same model with every weight random, the baseline everything is paired with. "
    "<b>other strategies</b> (tick the box): front inheritance (the collective's first layers, new layers after "
    "them), weight selection (a narrower copy of the whole collective model, Xu et al. 2024), the other windows of "
    "the learngene's length, the collective model fine-tuned, and nearest centroids on its features. "
    "<b>Size sweep</b>: learngene, front inheritance, weight selection at 1/8 to 1 of the collective's widths, the "
    "collective the reference point; every point is compared with scratch of its own architecture.</div>"
)
TABLE_STYLE = (
    "<style>.lg-results{border-collapse:collapse;font-size:11px}"
    ".lg-results th,.lg-results td{text-align:left;padding:1px 6px;line-height:1.35;vertical-align:top}"
    ".lg-results td.model{white-space:normal;max-width:520px}.lg-results td.num{white-space:nowrap}"
    ".lg-results thead tr{border-bottom:1px solid #999}.lg-results td.setup{padding-top:6px;font-style:italic}</style>"
)


def _points(value: float | None) -> str:
    return "" if value is None else f"{100 * value:+.1f}"


def table_html(rows: list[dict]) -> str:
    """The results table as HTML: one block per task setup, each row a sentence, learngene first."""
    if not rows:
        return "<div style='color:#777'>No results yet: press Run.</div>" + GLOSSARY
    columns = ("model", "parameters", "accuracy ± 95% CI", "minus scratch (points)", "tasks", "status")
    body, setup = [], None
    for r in rows:
        if r["setup"] != setup:
            setup = r["setup"]
            body.append(f"<tr><td colspan='{len(columns)}' class='setup'>{html.escape(setup)}</td></tr>")
        accuracy = (
            ""
            if r["mean_accuracy"] is None
            else f"{r['mean_accuracy']:.3f}" + ("" if r["ci95"] is None else f" ± {r['ci95']:.3f}")
        )
        paired, title = "", ""
        if r["vs_scratch"] is not None:
            d = r["vs_scratch"]
            paired = _points(d["mean"]) + ("" if d["ci95"] is None else f" ± {100 * d['ci95']:.1f}")
            p = "not defined for 1 task" if d["p_value"] is None else f"{d['p_value']:.3g}"
            title = f"paired over {d['tasks']} target tasks; paired t-test p = {p}"
        elif r["method"] == "scratch" or is_twin(r["method"]):
            paired = "(the reference)"
        cells = (
            ("model", r["model"], r["method"]),
            ("num", f"{r['params']:,}", "trainable parameters"),
            ("num", accuracy, "mean test accuracy over the target tasks"),
            ("num", paired, title),
            ("num", f"{r['tasks']}/{r['planned']}", "target tasks finished / planned"),
            ("num", r["status"], ""),
        )
        body.append(
            "<tr>"
            + "".join(
                f"<td class='{cls}' title='{html.escape(tip, quote=True)}'>{html.escape(str(text))}</td>"
                for cls, text, tip in cells
            )
            + "</tr>"
        )
    head = "".join(f"<th>{c}</th>" for c in columns)
    return (
        f"{TABLE_STYLE}<table class='lg-results'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        + reading_html(rows)
        + GLOSSARY
    )
