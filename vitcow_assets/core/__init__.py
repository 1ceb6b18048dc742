"""Pure core: numpy/pyarrow in, numpy/pyarrow out.

Modules here may import numpy, pyarrow, scipy, pycocotools and cv2 (as an image-math library).
They must not import dagster or torch, and must not open files or streams.
"""
