"""A Keras model served on CPU; replace the model and the pre/post-processing with yours."""

import numpy as np
import tensorflow as tf

tf.keras.utils.set_random_seed(0)
MODEL = tf.keras.Sequential([tf.keras.Input(shape=(8,)), tf.keras.layers.Dense(32, activation="relu"),
                             tf.keras.layers.Dense(2, activation="softmax")])


def predictor(inputs, batch_size):
    """Each input is a list of 8 numbers; the answer is the index of the highest score and the scores."""
    scores = MODEL(np.asarray(inputs, dtype=np.float32), training=False).numpy()
    return [{"label": int(row.argmax()), "scores": row.tolist()} for row in scores]
