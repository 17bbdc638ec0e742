// Reads an MLmodel through the installed library and prints its loader module.
#include <cstdio>

#include "pyfunc/model_spec.h"
#include "pyfunc/version.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto spec = pyfunc::ModelSpec::Load(argv[1]);
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().message().c_str());
    return 1;
  }
  auto flavor = spec->python_function();
  std::printf("pyfunc %s: %s\n", PYFUNC_VERSION, flavor.ok() ? flavor->loader_module.c_str() : "no python_function");
  return 0;
}
