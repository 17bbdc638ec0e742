// Prediction: what a model's predict returned, as a Table plus the Python shape it had.
//
// The shape decides how the output is written back (MLflow's scoring server writes a
// 1-D array as a list, a 2-D array as a list of lists, a Series and a DataFrame as
// lists of records): the runtime produces Predictions, the JSON and CSV codecs write them.
#ifndef PYFUNC_PREDICTION_H_
#define PYFUNC_PREDICTION_H_

#include <cstdint>
#include <vector>

#include "pyfunc/table.h"

namespace pyfunc {

enum class PredictionShape : uint8_t {
  kDataFrame = 0,  // pandas.DataFrame: one column per DataFrame column, names kept
  kSeries = 1,     // pandas.Series: one column named after the series ("" when unnamed)
  kArray1D = 2,    // 1-D numpy array (also lists and scalars): one column named ""
  kArray2D = 3,    // 2-D numpy array: columns "0", "1", ...
  kList = 4,       // a Python list (or scalar): one column named "", written like kArray1D
  kJson = 5,       // any other object (a dict, a str, nested lists): one string cell holding
                   // it as JSON text, as MLflow's NumpyEncoder writes it; the column is
                   // named "DataFrame" when the object was a DataFrame (cells holding lists)
  kColumns = 6,    // a dict of name → 1-D numpy array, all of one length: one column per
                   // entry, written as {"name": [...], ...}
};

// The Python object a model's predict is given, held as a Table (the values of the
// same codes travel in the worker's frame header).
enum class InputShape : uint8_t {
  kDataFrame = 0,     // pandas.DataFrame
  kArray1D = 2,       // 1-D numpy array: one column named ""
  kArray2D = 3,       // 2-D numpy array: columns "0", "1", ...
  kColumns = 5,       // dict of column name → 1-D numpy array
  kRecords = 6,       // list of dicts (one per row) of 0-d arrays, as MLflow's server parses them
  kPlainRecords = 9,  // list of dicts of Python scalars, as a caller passed them to predict
  kTensorsJson = 10,  // `instances`/`inputs` holding nested arrays (named multi-input or
                      // N-d tensors): one string cell with {"instances"|"inputs": value},
                      // made into ndarrays in the tensor signature's dtypes, as MLflow does
  kFrameJson = 11,    // `dataframe_split`/`dataframe_records` whose cells hold arrays or
                      // objects: one string cell with {"dataframe_split"|"dataframe_records":
                      // value}, made into a DataFrame by pandas as MLflow's server does
  kParquet = 12,      // a Parquet file's bytes in one binary cell, read by
                      // pandas.read_parquet in the worker as MLflow's server reads a
                      // `application/vnd.apache.parquet` body
  kScalar = 7,        // a 0-d numpy array: one column "", one row
  kJson = 8,          // a JSON object given as a dict: one string cell holding its text
                      // (MLflow's unified LLM request format)
};

// How the JSON writer spells a column's nulls: as MLflow's scoring server writes the
// missing value pandas held there (json.dumps of what DataFrame.to_dict or tolist gives).
enum class NullSpelling : uint8_t {
  kDefault = 0,  // null, and NaN for float64 (None, pandas.NA; NaN in a float column)
  kNaN = 1,      // NaN: the missing values were float NaN in a column of other values
                 // (pandas >= 3 strings, whose missing value is NaN; object columns with NaN)
  kNaT = 2,      // "NaT": missing timestamps of a DataFrame or Series (pandas.NaT's isoformat)
};

struct Prediction {
  Table table;
  PredictionShape shape = PredictionShape::kArray1D;
  // Per column of `table`, how its nulls are written as JSON; empty: kDefault for all.
  std::vector<NullSpelling> nulls;
};

}  // namespace pyfunc

#endif  // PYFUNC_PREDICTION_H_
