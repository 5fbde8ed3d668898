"""Case files (案卷) and notices as PDF, and bulk archives (一户一档), rendered with WeasyPrint from our own
templates; the rules they follow (who may print, what is masked, notice numbers) live in `workflows`."""

from .casefile import print_casefile, render_casefile
from .notices import notice_pdf, render_notice

__all__ = ["notice_pdf", "print_casefile", "render_casefile", "render_notice"]
