"""The seed's example: an sklearn iris classifier as a pyfunc model.

    python examples/iris.py [OUTPUT_DIR]

1. trains a LogisticRegression on iris;
2. saves it the seed's way: the pickled estimator is the model's data, and a tiny
   loader module (passed in code_path) knows how to load it;
3. loads it back with pyfunc.load_pyfunc and prints predictions;
4. shows that none of this needed MLflow (or a YAML library), and prints the
   standalone loader that get_module_loader_src generates for deployment.

The model directory is MLflow's format: ``mlflow.pyfunc.load_model(OUTPUT_DIR/iris)``
loads it too.
"""

import os
import pickle
import sys
import tempfile
import textwrap

import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import pyfunc

LOADER_SOURCE = textwrap.dedent("""\
    # Loader module of the iris model: pyfunc (or MLflow) imports it after putting the
    # model's code/ directory on sys.path, and calls _load_pyfunc(<model>/data/<file>).
    import pickle


    def _load_pyfunc(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    """)


def main(out_dir):
    iris = load_iris(as_frame=True)
    estimator = LogisticRegression(max_iter=300).fit(iris.data, iris.target)

    # The inputs of save_model: a data file and the loader module.
    work = os.path.join(out_dir, "inputs")
    os.makedirs(work, exist_ok=True)
    data_path = os.path.join(work, "model.pkl")
    with open(data_path, "wb") as f:
        pickle.dump(estimator, f)
    loader_path = os.path.join(work, "iris_loader.py")
    with open(loader_path, "w") as f:
        f.write(LOADER_SOURCE)

    model_dir = os.path.join(out_dir, "iris")
    model = pyfunc.save_model(model_dir, loader_module="iris_loader", data_path=data_path, code_path=[loader_path])
    print("saved", model_dir, "with files", sorted(os.listdir(model_dir)))
    print(model.to_yaml())

    loaded = pyfunc.load_pyfunc(model_dir)
    sample = pd.concat([iris.data.iloc[:3], iris.data.iloc[50:53], iris.data.iloc[100:103]])
    predictions = loaded.predict(sample)
    print("predictions:", [str(iris.target_names[p]) for p in predictions])

    print("MLflow imported:", "mlflow" in sys.modules, "| PyYAML imported:", "yaml" in sys.modules)
    print("standalone loader for deployment at /srv/iris:")
    print(pyfunc.get_module_loader_src(model_dir, "/srv/iris"))
    return predictions


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
