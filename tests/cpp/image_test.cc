// Container image build contexts: the Dockerfile's contract (user, ports, entrypoint,
// environment) and the refusals of bad options. Building and running images is tested
// with a real builder in tests/images/.
#include "pyfunc/image.h"

#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace pyfunc {
namespace {

namespace fs = std::filesystem;
using ::pyfunc::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

DockerfileSpec Spec(bool with_model) {
  DockerfileSpec s;
  s.base_image = "python:3.11-slim-bookworm";
  s.wheel = "pyfunc-0.1.0-cp311-cp311-linux_x86_64.whl";
  s.runtime_packages = {"libfmt9", "libyaml-cpp0.7"};
  s.uv_version = "0.13.9";
  s.with_model = with_model;
  s.model_uri = "runs:/abc/model";
  return s;
}

TEST(DockerfileTest, ServesTheBakedModelAsANonRootUserOn8080) {
  const std::string text = DockerfileText(Spec(true));
  EXPECT_THAT(text, HasSubstr("FROM python:3.11-slim-bookworm\n"));
  EXPECT_THAT(text, HasSubstr("--no-install-recommends \\\n      libfmt9 \\\n      libyaml-cpp0.7 \\\n"));
  EXPECT_THAT(text, HasSubstr("COPY pyfunc-0.1.0-cp311-cp311-linux_x86_64.whl /tmp/"));
  EXPECT_THAT(text, HasSubstr("apt-get clean"));
  EXPECT_THAT(text, HasSubstr("COPY --chown=1000:0 model /opt/ml/model\n"));
  // The environment is built at build time with uv, which goes in the same layer, and is
  // then the server's user's; the server runs as that user.
  const size_t uv = text.find("pip install --quiet --no-cache-dir uv==0.13.9");
  const size_t prepare = text.find("pyfunc prepare-env -m /opt/ml/model --env-manager virtualenv");
  const size_t removed = text.find("pip uninstall --quiet --yes uv pip");
  const size_t owned = text.find("chown -R 1000:0 /opt/pyfunc/envs \\\n && chmod -R g=u /opt/pyfunc/envs\n");
  const size_t user = text.find("USER 1000:0\n");
  ASSERT_NE(uv, std::string::npos);
  ASSERT_NE(prepare, std::string::npos);
  ASSERT_NE(removed, std::string::npos);
  ASSERT_NE(owned, std::string::npos);
  ASSERT_NE(user, std::string::npos);
  EXPECT_LT(uv, prepare);
  EXPECT_LT(prepare, removed);
  EXPECT_LT(removed, owned);
  EXPECT_LT(owned, user);
  EXPECT_EQ(text.find("RUN", uv), text.find("RUN", prepare));  // one layer: no RUN between them
  EXPECT_EQ(text.rfind("RUN", removed), text.rfind("RUN", uv));
  EXPECT_THAT(text, HasSubstr("PYFUNC_MODEL_URI=/opt/ml/model"));
  EXPECT_THAT(text, HasSubstr("MLFLOW_HOST=0.0.0.0"));
  EXPECT_THAT(text, HasSubstr("MLFLOW_PORT=8080"));
  EXPECT_THAT(text, HasSubstr("MLFLOW_MODELS_WORKERS=0"));  // a worker per core the container may use
  EXPECT_THAT(text, HasSubstr("EXPOSE 8080\n"));
  EXPECT_THAT(text, Not(HasSubstr("PYFUNC_GRPC_PORT")));
  EXPECT_THAT(text, HasSubstr("STOPSIGNAL SIGTERM\n"));
  // `docker run IMAGE serve` (SageMaker) and `docker run IMAGE` both serve.
  EXPECT_THAT(text, HasSubstr("ENTRYPOINT [\"pyfunc\"]\nCMD [\"serve\"]\n"));
  EXPECT_THAT(text, HasSubstr("runs:/abc/model"));
}

TEST(DockerfileTest, ServesGrpcOn8081WhenTheWheelHasIt) {
  DockerfileSpec spec = Spec(true);
  spec.grpc = true;
  const std::string text = DockerfileText(spec);
  EXPECT_THAT(text, HasSubstr("MLFLOW_MODELS_WORKERS=0 \\\n    PYFUNC_GRPC_PORT=8081\n"));
  EXPECT_THAT(text, HasSubstr("EXPOSE 8080 8081\n"));
}

TEST(DockerfileTest, AGenericImageHasNoModelAndBuildsNoEnvironment) {
  const std::string text = DockerfileText(Spec(false));
  EXPECT_THAT(text, Not(HasSubstr("COPY --chown=1000:0 model")));
  EXPECT_THAT(text, Not(HasSubstr("prepare-env")));
  EXPECT_THAT(text, HasSubstr("pip install --quiet --no-cache-dir uv==0.13.9"));  // kept: it builds at start
  EXPECT_THAT(text, Not(HasSubstr("uninstall --quiet --yes uv")));
  EXPECT_THAT(text, HasSubstr("USER 1000:0\n"));
  EXPECT_THAT(text, HasSubstr("/opt/ml/model"));
  EXPECT_THAT(text, HasSubstr("CMD [\"serve\"]\n"));
}

TEST(DockerContextTest, RefusesAModelTogetherWithNoModelAndNeither) {
  TempDir dir;
  ImageOptions both;
  both.model_uri = dir.Join("model");
  both.no_model = true;
  Result<DockerContext> r = GenerateDockerContext(both, dir.Join("ctx"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("takes no model URI"));

  Result<DockerContext> neither = GenerateDockerContext(ImageOptions{}, dir.Join("ctx"));
  ASSERT_FALSE(neither.ok());
  EXPECT_THAT(neither.status().message(), HasSubstr("no model URI given"));
  EXPECT_FALSE(fs::exists(dir.Join("ctx")));
}

TEST(DockerContextTest, RefusesADirectoryWithoutMLmodelANonEmptyContextAndAMissingWheel) {
  TempDir dir;
  fs::create_directories(dir.Join("not-a-model"));
  ImageOptions o;
  o.model_uri = dir.Join("not-a-model");
  Result<DockerContext> r = GenerateDockerContext(o, dir.Join("ctx"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("has no MLmodel file"));

  ImageOptions generic;
  generic.no_model = true;
  fs::create_directories(dir.Join("full"));
  std::ofstream(dir.Join("full/keep")) << "x";
  Result<DockerContext> full = GenerateDockerContext(generic, dir.Join("full"));
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(full.status().message(), HasSubstr("not empty"));

  generic.pyfunc_wheel = dir.Join("missing.whl");
  Result<DockerContext> wheel = GenerateDockerContext(generic, dir.Join("ctx2"));
  ASSERT_FALSE(wheel.ok());
  EXPECT_EQ(wheel.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(wheel.status().message(), HasSubstr("missing.whl: no such wheel"));
}

TEST(DockerContextTest, RefusesAFileThatIsNotAWheel) {
  TempDir dir;
  std::ofstream(dir.Join("fake.whl")) << "not a zip file";
  ImageOptions o;
  o.no_model = true;
  o.pyfunc_wheel = dir.Join("fake.whl");
  Result<DockerContext> r = GenerateDockerContext(o, dir.Join("ctx"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("not a wheel"));
}

TEST(ImageBuilderTest, NamesTheBuilderThatIsMissingOrUnknown) {
  Result<std::string> unknown = FindImageBuilder("kaniko");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("choose docker, podman or buildah"));
}

}  // namespace
}  // namespace pyfunc
