// The SQLite schema of MLflow's tracking database that pyfunc creates new databases
// with, and the chain of MLflow's schema (alembic) revisions. Generated into
// mlflow_sqlite_schema.cc by scripts/mlflow_sqlite_schema.py from a database that MLflow
// itself created.
#ifndef PYFUNC_SRC_TRACKING_MLFLOW_SQLITE_SCHEMA_H_
#define PYFUNC_SRC_TRACKING_MLFLOW_SQLITE_SCHEMA_H_

#include <string>
#include <vector>

namespace pyfunc::tracking_internal {

// The MLflow release the schema was taken from, and its (newest) revision.
extern const char* const kMlflowSchemaMlflowVersion;
extern const char* const kMlflowSchemaRevision;
// Every revision of MLflow's migrations up to kMlflowSchemaRevision, oldest first.
const std::vector<std::string>& MlflowSchemaRevisionChain();
// CREATE TABLE / INDEX / TRIGGER statements of kMlflowSchemaRevision, then the rows the
// migrations insert (alembic_version, the default workspace).
const std::vector<std::string>& MlflowSchemaStatements();

}  // namespace pyfunc::tracking_internal

#endif  // PYFUNC_SRC_TRACKING_MLFLOW_SQLITE_SCHEMA_H_
