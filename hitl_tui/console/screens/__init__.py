"""Modal screens: confirm/ask-a-reason, edit arguments, stage picker, history, calibration, full text, help."""

from .calibration import CalibrationScreen
from .confirm import ConfirmScreen
from .edit_args import EditArgsScreen
from .help import HelpScreen
from .history import HistoryScreen
from .stage import StageScreen
from .text_view import TextViewScreen

__all__ = [
    "CalibrationScreen",
    "ConfirmScreen",
    "EditArgsScreen",
    "HelpScreen",
    "HistoryScreen",
    "StageScreen",
    "TextViewScreen",
]
