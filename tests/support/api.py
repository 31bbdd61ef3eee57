"""The API key the API tests serve with, and crops of a person in one colour."""

import numpy as np

KEY = "test-key"


def person_crops(color, n=4):
    img = np.zeros((128, 64, 3), np.uint8)
    img[:] = (90, 90, 90)
    img[20:120, 16:48] = color
    return [img.copy() for _ in range(n)]
