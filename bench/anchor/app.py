"""The anchor: FastAPI + TensorFlow/Keras, the way an MNIST model is usually served in Python.

POST /predict with a multipart image upload -> {"class": int, "scores": [...]}.
Run: MODEL=mnist_mlp.keras uvicorn app:app --port 8000
"""
import io
import os

import numpy as np
import tensorflow as tf
from fastapi import FastAPI, File, UploadFile
from PIL import Image

model = tf.keras.models.load_model(os.environ.get("MODEL", "mnist_mlp.keras"))
app = FastAPI()


@app.post("/predict")
async def predict(image: UploadFile = File(...)):
    img = Image.open(io.BytesIO(await image.read())).convert("L").resize((28, 28))
    x = np.asarray(img, dtype=np.float32)[None] / 255.0
    # model(x) rather than model.predict(x): the fast path for one small batch (predict() costs
    # ~80 ms per call in setup), as a careful user writes it.
    scores = model(x, training=False).numpy()[0]
    return {"class": int(np.argmax(scores)), "scores": scores.tolist()}
