"""A small Keras text classifier (hashed words, embedding, average, dense), served on CPU.

Random init with a fixed seed: the recipe shows serving a Keras model with
batching, not a trained sentiment model.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402  (after the log level is set)

tf.keras.utils.set_random_seed(0)
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

LABELS = ["negative", "positive"]
MAX_WORDS = 32

vectorize = tf.keras.layers.TextVectorization(max_tokens=None, output_mode="int",
                                              output_sequence_length=MAX_WORDS, split="whitespace")
vectorize.adapt(["the a an and or but good bad great terrible movie film plot actor"])  # a tiny vocabulary
MODEL = tf.keras.Sequential([
    tf.keras.Input(shape=(MAX_WORDS,), dtype="int64"),
    tf.keras.layers.Embedding(vectorize.vocabulary_size(), 16),
    tf.keras.layers.GlobalAveragePooling1D(),
    tf.keras.layers.Dense(len(LABELS), activation="softmax"),
])


@tf.function(reduce_retracing=True)
def scores(texts):
    return MODEL(vectorize(texts), training=False)


def predictor(inputs, batch_size):
    probabilities = scores(tf.constant([str(text).lower() for text in inputs])).numpy()
    return [{"label": LABELS[int(row.argmax())], "scores": [round(float(x), 4) for x in row]}
            for row in probabilities]
