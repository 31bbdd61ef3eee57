"""Where the tests find the repository and the shared real data (absent in a fresh clone: tests skip)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
VTEST = SHARED_DATA / "videos" / "pets2009_s2l1_vtest" / "vtest.avi"  # PETS 2009 S2.L1 view 1, 480x360, 10 fps
YOLO_ONNX = SHARED_DATA / "weights" / "yolov8n_int8_onnx" / "yolov8n_int8.onnx"
YOLO_OPENVINO = SHARED_DATA / "weights" / "yolov8n_int8_openvino_model"  # the INT8 YOLOv8n as an OpenVINO folder
INDOOR = SHARED_DATA / "videos" / "chuyko_2cam_indoor"  # cam1.mp4, cam2.mp4: 1280x720, 30 fps, one person

needs_video = pytest.mark.skipif(not VTEST.is_file(), reason=f"{VTEST} is absent (a fresh clone without shared data)")
