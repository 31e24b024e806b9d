"""Detector backends and the registry that names them."""

from cowdemo.models.base import Detector
from cowdemo.models.registry import DEFAULT_MODEL, ModelSpec, find_model, list_models, load_detector

__all__ = ["DEFAULT_MODEL", "Detector", "ModelSpec", "find_model", "list_models", "load_detector"]
