"""robustprop: export (torch → ONNX with the clamp as Clip, metadata, parity check)."""

from robustprop.export.metadata import read_metadata, robustprop_version
from robustprop.export.onnx_export import ExportReport, export_onnx

__all__ = ["ExportReport", "export_onnx", "read_metadata", "robustprop_version"]
