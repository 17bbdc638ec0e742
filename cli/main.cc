// The `pyfunc` command-line tool: thin commands over libpyfunc.
//
// Exit status: 0 on success, 1 on a user error (bad model, missing file) with a
// one-line message on stderr, 2 on bad usage (unknown option, missing argument).
#include <string>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "commands.h"
#include "pyfunc/version.h"

namespace pyfunc::cli {

int Fail(const Status& status) {
  std::string msg = status.message();
  for (char& c : msg)
    if (c == '\n') c = ' ';
  fmt::print(stderr, "pyfunc: error: {}\n", msg);
  return kUserError;
}

}  // namespace pyfunc::cli

int main(int argc, char** argv) {
  using namespace pyfunc::cli;
  CLI::App app{"pyfunc: load, check and score pyfunc (MLflow python_function) models", "pyfunc"};
  app.set_version_flag("--version", std::string("pyfunc ") + PYFUNC_VERSION);
  app.require_subcommand(1);

  int exit_code = 0;
  RegisterModelCommands(app, &exit_code);
  RegisterPredictCommands(app, &exit_code);
  RegisterTrackingCommands(app, &exit_code);
  RegisterServeCommand(app, &exit_code);
  RegisterDockerCommands(app, &exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion&) {
    fmt::print("pyfunc {}\n", PYFUNC_VERSION);
    return 0;
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "pyfunc: usage error: {}\nRun 'pyfunc --help' for usage.\n", e.what());
    return kUsageError;
  }
  return exit_code;
}
