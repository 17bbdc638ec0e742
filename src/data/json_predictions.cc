// Predictions out: MLflow's `{"predictions": ...}` bodies written from Predictions
// (include/pyfunc/json_codec.h).
#include <string>

#include "data/text_format.h"
#include "format/json.h"
#include "pyfunc/json_codec.h"

namespace pyfunc {
namespace {

// Value `r` of the column's values (a row's value for scalar cells).
void AppendValue(const Column& c, int64_t r, std::string* out) {
  switch (c.type()) {
    case DataType::kInt64: AppendInt64(c.int64_data()[r], out); break;
    case DataType::kUInt64: AppendUInt64(c.data_as<uint64_t>()[r], out); break;
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
    case DataType::kUInt8:
    case DataType::kUInt16:
    case DataType::kUInt32: AppendInt64(static_cast<int64_t>(c.NumberAt(r)), out); break;
    // float16/32 as MLflow writes them: the value as a Python float (tolist(), item()).
    case DataType::kFloat16:
    case DataType::kFloat32:
    case DataType::kFloat64: json::AppendFloat(c.NumberAt(r), out); break;
    case DataType::kBool: out->append(c.bool_value(r) ? "true" : "false"); break;
    case DataType::kString: json::AppendString(c.string_value(r), out); break;
    case DataType::kBinary: {  // base64.encodebytes, as MLflow's NumpyEncoder
      std::string text;
      AppendBase64(c.string_value(r), /*mime_lines=*/true, &text);
      json::AppendString(text, out);
      break;
    }
    case DataType::kTimestamp: {
      std::string text;
      AppendIsoTimestamp(c.int64_data()[r], 'T', &text);
      json::AppendString(text, out);
      break;
    }
  }
}

// Row r's tensor cell as nested lists, as numpy's tolist() writes it.
void AppendTensorCell(const Column& c, int64_t r, std::string* out) {
  int64_t element = r * c.cell_size();
  AppendNestedLists(c.cell_shape(), out, [&](std::string* o) { AppendValue(c, element++, o); });
}

void AppendCell(const Column& c, int64_t r, std::string* out, NullSpelling nulls = NullSpelling::kDefault) {
  if (c.IsNull(r)) {
    if (nulls == NullSpelling::kNaT) {
      out->append("\"NaT\"");
    } else {
      out->append((IsFloating(c.type()) && !c.is_tensor()) || nulls == NullSpelling::kNaN ? "NaN" : "null");
    }
    return;
  }
  if (c.is_tensor())
    AppendTensorCell(c, r, out);
  else
    AppendValue(c, r, out);
}

}  // namespace

void AppendPredictionJson(const Prediction& prediction, std::string* out) {
  const Table& t = prediction.table;
  if (prediction.shape == PredictionShape::kJson) {
    // The worker wrote the object as JSON text, the way MLflow writes it.
    if (t.num_columns() == 1 && t.num_rows() == 1 && t.column(0).type() == DataType::kString &&
        t.column(0).IsValid(0)) {
      const int64_t* offsets = t.column(0).string_offsets();
      out->append(reinterpret_cast<const char*>(t.column(0).string_data()->data()) + offsets[0],
                  static_cast<size_t>(offsets[1] - offsets[0]));
    } else {
      out->append("null");
    }
    return;
  }
  const int64_t rows = t.num_rows();
  const int ncols = t.num_columns();
  auto nulls = [&prediction](int j) {
    return static_cast<size_t>(j) < prediction.nulls.size() ? prediction.nulls[static_cast<size_t>(j)]
                                                            : NullSpelling::kDefault;
  };
  if (prediction.shape == PredictionShape::kColumns) {  // {"name": [...], ...}
    out->push_back('{');
    for (int j = 0; j < ncols; ++j) {
      if (j) out->append(", ");
      json::AppendString(t.column_name(j), out);
      out->append(": [");
      for (int64_t r = 0; r < rows; ++r) {
        if (r) out->append(", ");
        AppendCell(t.column(j), r, out, nulls(j));
      }
      out->push_back(']');
    }
    out->push_back('}');
    return;
  }
  if (ncols == 0 && prediction.shape == PredictionShape::kDataFrame) {
    out->append("[]");  // pandas' to_dict("records") of rows without columns
    return;
  }
  std::vector<std::string> keys(static_cast<size_t>(ncols));
  for (int j = 0; j < ncols; ++j) {
    std::string name = t.column_name(j);
    if (prediction.shape == PredictionShape::kSeries && name.empty()) name = "0";
    json::AppendString(name, &keys[static_cast<size_t>(j)]);
    keys[static_cast<size_t>(j)] += ": ";
  }
  out->push_back('[');
  for (int64_t r = 0; r < rows; ++r) {
    if (r) out->append(", ");
    switch (prediction.shape) {
      case PredictionShape::kArray1D:
      case PredictionShape::kList:
        if (ncols == 1) {
          AppendCell(t.column(0), r, out, nulls(0));
          break;
        }
        [[fallthrough]];  // several columns cannot be 1-D: write rows
      case PredictionShape::kArray2D:
        out->push_back('[');
        for (int j = 0; j < ncols; ++j) {
          if (j) out->append(", ");
          AppendCell(t.column(j), r, out, nulls(j));
        }
        out->push_back(']');
        break;
      case PredictionShape::kJson:  // returned above
      case PredictionShape::kColumns: break;
      case PredictionShape::kSeries:
      case PredictionShape::kDataFrame:
        out->push_back('{');
        for (int j = 0; j < ncols; ++j) {
          if (j) out->append(", ");
          out->append(keys[static_cast<size_t>(j)]);
          AppendCell(t.column(j), r, out, nulls(j));
        }
        out->push_back('}');
        break;
    }
  }
  out->push_back(']');
}

std::string PredictionsToJson(const Prediction& prediction) {
  std::string out = "{\"predictions\": ";
  AppendPredictionJson(prediction, &out);
  out.push_back('}');
  return out;
}

Status PredictionStreamWriter::Append(const Prediction& p, std::string* out) {
  std::string body;
  AppendPredictionJson(p, &body);  // "[...]", or any JSON for an object (kJson)
  if ((p.shape == PredictionShape::kJson || p.shape == PredictionShape::kColumns) && (body.empty() || body[0] != '[')) {
    // A dict, a str, ...: the predictions as a whole, which no other batch can join.
    if (any_rows_ || whole_) {
      return Status::InvalidArgument(
          "the model returned a single object (not one prediction per row) for a batch; such output "
          "cannot be joined across batches: score the input in one batch (--batch-rows)");
    }
    whole_ = true;
    if (!unwrapped_) out->append("{\"predictions\": ");
    out->append(body);
    return Status::OK();
  }
  if (whole_) {
    return Status::InvalidArgument(
        "the model returned a single object for an earlier batch; score the input in one batch (--batch-rows)");
  }
  if (unwrapped_) {
    any_rows_ = true;
    out->append(body);
    return Status::OK();
  }
  if (body.size() > 2) {
    out->append(any_rows_ ? ", " : "{\"predictions\": [");
    out->append(body, 1, body.size() - 2);
    any_rows_ = true;
  }
  return Status::OK();
}

void PredictionStreamWriter::Finish(std::string* out) {
  if (unwrapped_)
    out->append(whole_ || any_rows_ ? "\n" : "[]\n");
  else if (whole_)
    out->append("}\n");
  else
    out->append(any_rows_ ? "]}\n" : "{\"predictions\": []}\n");
}

}  // namespace pyfunc
