"""Modal screens: confirm/ask-a-reason, edit arguments, stage picker, history, full text, help."""

from .confirm import ConfirmScreen
from .edit_args import EditArgsScreen
from .help import HelpScreen
from .history import HistoryScreen
from .stage import StageScreen
from .text_view import TextViewScreen

__all__ = ["ConfirmScreen", "EditArgsScreen", "HelpScreen", "HistoryScreen", "StageScreen", "TextViewScreen"]
