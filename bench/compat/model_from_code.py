# A models-from-code PythonModel: bench/compat/run.py saves it with
# mlflow.pyfunc.save_model(path, python_model="<this file>"), so MLflow stores this source,
# not a pickle, and every loader runs it.
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class CodeModel(PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None):
        offset = (params or {}).get("offset", 0.0)
        return model_input.assign(total=model_input["x"] + model_input["y"] + offset)


mlflow.models.set_model(CodeModel())
