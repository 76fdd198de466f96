"""A client report as PDF (reportlab): the agency's logo, name and colour, then the figures."""

from __future__ import annotations

import io
import logging
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from apps.brand.selectors import Brand, logo_bytes
from apps.reports.selectors import ClientReport
from tenants.models import Agency

logger = logging.getLogger(__name__)

GRID = colors.HexColor("#e1e4ea")


def _number(value: int, signed: bool = False) -> str:
    return f"{value:+,}" if signed else f"{value:,}"


def _logo(agency: Agency) -> Image | None:
    """The logo at most 18 mm high and 60 mm wide, or None (a logo that cannot be read is left out)."""
    if not agency.brand_logo:
        return None
    try:
        data = logo_bytes(agency)
        width, height = ImageReader(io.BytesIO(data)).getSize()
    except Exception:  # the report goes out without it rather than not at all
        logger.warning("The brand logo of %s could not be read", agency.schema_name)
        return None
    scale = min(18 * mm / height, 60 * mm / width)
    return Image(io.BytesIO(data), width=width * scale, height=height * scale, hAlign="LEFT")


def _table(rows: list[list[str]], widths: list[float], brand: colors.Color) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("LINEBELOW", (0, 0), (-1, 0), 1.5, brand),
                ("LINEBELOW", (0, 1), (-1, -1), 0.5, GRID),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return table


def report_pdf_bytes(*, report: ClientReport, agency: Agency, brand: Brand) -> bytes:
    """The report as an A4 PDF: a bar in the brand colour on every page, the logo and name on top."""
    colour = colors.HexColor(brand.colour)
    styles = getSampleStyleSheet()
    cell = ParagraphStyle("cell", parent=styles["BodyText"], fontSize=9, leading=11)
    out = io.BytesIO()

    def page_bar(canvas: object, doc: object) -> None:
        canvas.saveState()  # type: ignore[attr-defined]
        canvas.setFillColor(colour)  # type: ignore[attr-defined]
        canvas.rect(0, A4[1] - 8 * mm, A4[0], 8 * mm, stroke=0, fill=1)  # type: ignore[attr-defined]
        canvas.setFillColor(colors.grey)  # type: ignore[attr-defined]
        canvas.setFont("Helvetica", 8)  # type: ignore[attr-defined]
        canvas.drawString(18 * mm, 10 * mm, f"{brand.name} · {report.client}")  # type: ignore[attr-defined]
        canvas.restoreState()  # type: ignore[attr-defined]

    document = SimpleDocTemplate(
        out,
        pagesize=A4,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        title=f"{report.client}: report {report.first} to {report.last}",
        author=brand.name,
    )
    story: list[object] = []
    logo = _logo(agency)
    if logo is not None:
        story += [logo, Spacer(1, 3 * mm)]
    story += [
        Paragraph(escape(brand.name), styles["Heading3"]),
        Paragraph(f"Report for {escape(report.client)}", styles["Title"]),
        Paragraph(
            f"{report.first:%d %B %Y} to {report.last:%d %B %Y} ({report.days} days)", styles["BodyText"]
        ),
        Spacer(1, 6 * mm),
    ]
    width = A4[0] - 36 * mm
    summary = [["Figure", "Value"]] + [
        [label, _number(value, signed=label == "Follower growth")] for label, value in report.summary()
    ]
    story += [_table(summary, [width * 0.6, width * 0.4], colour), Spacer(1, 6 * mm)]
    if not report.has_snapshots:
        story.append(Paragraph("No daily snapshots were taken in this period.", styles["BodyText"]))

    story.append(Paragraph("Accounts", styles["Heading2"]))
    accounts = [["Account", "Posts", "Views", "Likes", "Comments", "Shares", "Followers +/-"]]
    for line in report.lines:
        accounts.append(
            [
                Paragraph(escape(str(line.account)), cell),
                _number(line.posts_published),
                *(_number(line.gained[m]) for m in ("views", "likes", "comments", "shares")),
                _number(line.follower_growth, signed=True),
            ]
        )
    story += [_table(accounts, [width * 0.28] + [width * 0.12] * 6, colour), Spacer(1, 6 * mm)]

    story.append(Paragraph("Top posts", styles["Heading2"]))
    if report.top_posts:
        top = [["Post", "Views", "Likes", "Comments", "Shares"]]
        for post in report.top_posts:
            top.append(
                [
                    Paragraph(f"{escape(post.title)}<br/>{escape(str(post.account))}", cell),
                    _number(post.views),
                    _number(post.likes),
                    _number(post.comments),
                    _number(post.shares),
                ]
            )
        story.append(_table(top, [width * 0.44] + [width * 0.14] * 4, colour))
    else:
        story.append(Paragraph("No videos were counted in this period.", styles["BodyText"]))
    document.build(story, onFirstPage=page_bar, onLaterPages=page_bar)
    return out.getvalue()
