// The commands of the `pyfunc` tool. Each Register* function adds its subcommands to
// the app; a subcommand's callback stores its exit status in `*exit_code`.
#ifndef PYFUNC_CLI_COMMANDS_H_
#define PYFUNC_CLI_COMMANDS_H_

#include <string>

#include <CLI/CLI.hpp>

#include "pyfunc/status.h"

namespace pyfunc::cli {

constexpr int kUserError = 1;   // a bad model, a missing file, a failed prediction
constexpr int kUsageError = 2;  // an unknown option, a missing argument

// Prints "pyfunc: error: <message>" (on one line) to stderr and returns kUserError.
int Fail(const Status& status);

// info, validate, loader-src (cli/model_commands.cc).
void RegisterModelCommands(CLI::App& app, int* exit_code);

// predict, prepare-env (cli/predict_command.cc).
void RegisterPredictCommands(CLI::App& app, int* exit_code);

// runs list, runs show, experiments list (cli/tracking_commands.cc).
void RegisterTrackingCommands(CLI::App& app, int* exit_code);

// generate-dockerfile, build-docker (cli/docker_commands.cc).
void RegisterDockerCommands(CLI::App& app, int* exit_code);

// serve (cli/serve_command.cc).
void RegisterServeCommand(CLI::App& app, int* exit_code);

}  // namespace pyfunc::cli

#endif  // PYFUNC_CLI_COMMANDS_H_
