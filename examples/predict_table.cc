// Loads a pyfunc model with the C++ API and scores a small table built in C++.
//
//   example_predict_table MODEL_DIR [--env-manager local|virtualenv]
//
// The table has two float64 columns, "x" and "y", of five rows. The output is printed
// in Table::ToString's text form.
#include <cstdio>
#include <string>

#include "pyfunc/model.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [--env-manager NAME]\n", argv[0]);
    return 2;
  }
  pyfunc::LoadOptions options;
  if (argc == 4 && std::string(argv[2]) == "--env-manager") {
    auto manager = pyfunc::ParseEnvManager(argv[3]);
    if (!manager.ok()) {
      std::fprintf(stderr, "%s\n", manager.status().message().c_str());
      return 2;
    }
    options.env_manager = *manager;
  }
  auto model = pyfunc::Model::Load(argv[1], options);
  if (!model.ok()) {
    std::fprintf(stderr, "error: %s\n", model.status().message().c_str());
    return 1;
  }

  pyfunc::TableBuilder builder({{"x", pyfunc::DataType::kFloat64}, {"y", pyfunc::DataType::kFloat64}});
  for (int i = 0; i < 5; ++i) {
    builder.column(0).AppendFloat64(i);
    builder.column(1).AppendFloat64(i * 0.5);
  }
  auto table = builder.Finish();
  if (!table.ok()) {
    std::fprintf(stderr, "error: %s\n", table.status().message().c_str());
    return 1;
  }
  auto prediction = model->Predict(*table);
  if (!prediction.ok()) {
    std::fprintf(stderr, "error: %s\n", prediction.status().message().c_str());
    return 1;
  }
  std::printf("%s", prediction->table.ToString().c_str());
  return 0;
}
