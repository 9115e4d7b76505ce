"""The array types of the task code: token ids in, float32 model outputs out."""

import numpy as np
import numpy.typing as npt

from rnntext.encoders import IntArray

FloatArray = npt.NDArray[np.float32]  # what onnxruntime returns: logits, probabilities, log-probabilities

__all__ = ["FloatArray", "IntArray"]
