"""The Keras reference for `make bench-train`: the same MNIST MLP or CNN as `litehouse train`
(same layers, Adam 1e-3, batch 32, the same IDX files), trained epoch by epoch with the test
accuracy measured after each, so the time to reach the target is known. Prints one JSON line.

Usage: python keras_mnist.py MNIST_DIR mlp|cnn EPOCHS TARGET_ACCURACY
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

data, arch, epochs, target = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
started = time.perf_counter()


def idx(name, offset):
    with open(os.path.join(data, name), "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


x_train = idx("train-images.idx3-ubyte", 16).reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
y_train = idx("train-labels.idx1-ubyte", 8).astype(np.int64)
x_test = idx("t10k-images.idx3-ubyte", 16).reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
y_test = idx("t10k-labels.idx1-ubyte", 8).astype(np.int64)
# litehouse holds out a tenth of the training set for validation; Keras trains on the same
# number of examples.
n = len(x_train) - len(x_train) // 10
x_train, y_train = x_train[:n], y_train[:n]

tf.keras.utils.set_random_seed(42)
layers = tf.keras.layers
if arch == "mlp":
    body = [layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.2)]
else:
    body = [layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(),
            layers.Flatten(), layers.Dense(128, activation="relu")]
model = tf.keras.Sequential([tf.keras.Input((28, 28, 1)), *body,
                             layers.Dense(10, activation="softmax")])
model.compile(tf.keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
loaded = time.perf_counter()
reached, accuracy, epoch = None, 0.0, 0
for epoch in range(1, epochs + 1):
    model.fit(x_train, y_train, batch_size=32, epochs=1, verbose=0, shuffle=True)
    accuracy = float(model.evaluate(x_test, y_test, batch_size=256, verbose=0)[1])
    if accuracy >= target:
        reached = time.perf_counter() - started
        break
print(json.dumps({
    "arch": arch,
    "epochs": epoch,
    "test_accuracy": accuracy,
    "seconds_to_target": reached,
    "load_seconds": loaded - started,
    "seconds": time.perf_counter() - started,
}))
