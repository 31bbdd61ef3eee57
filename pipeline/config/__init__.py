from pipeline.config.loader import load_config
from pipeline.config.schema import CrosscamConfig

__all__ = ["CrosscamConfig", "load_config"]
