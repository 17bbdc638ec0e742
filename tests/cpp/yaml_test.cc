// YAML typing and emission as PyYAML does them. (The randomized comparison against
// the real PyYAML lives in tests/python; these cases pin the rules.)
#include "pyfunc/yaml.h"

#include <cmath>

#include "test_util.h"

namespace pyfunc {
namespace {

Value Parse(const std::string& text) {
  Result<Value> v = ParseYaml(text, "t");
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : Value();
}

TEST(YamlTest, ResolvesPlainScalarsAsYaml11) {
  Value v = Parse("a: yes\nb: Off\nc: 0x1F\nd: 017\ne: 1_000\nf: 1:20\ng: 1.5\nh: .5\ni: 1e5\n"
                  "j: .inf\nk: ~\nl:\nm: 2023-01-01\nn: '1'\no: \"true\"\np: -.inf\nq: .NaN\n");
  EXPECT_EQ(v.Find("a")->as_bool(), true);
  EXPECT_EQ(v.Find("b")->as_bool(), false);
  EXPECT_EQ(v.Find("c")->as_int(), 31);
  EXPECT_EQ(v.Find("d")->as_int(), 15);
  EXPECT_EQ(v.Find("e")->as_int(), 1000);
  EXPECT_EQ(v.Find("f")->as_int(), 80);
  EXPECT_EQ(v.Find("g")->as_float(), 1.5);
  EXPECT_EQ(v.Find("h")->as_float(), 0.5);
  EXPECT_EQ(v.Find("i")->as_string(), "1e5");  // YAML 1.1 floats need a dot
  EXPECT_TRUE(std::isinf(v.Find("j")->as_float()));
  EXPECT_TRUE(v.Find("k")->is_null());
  EXPECT_TRUE(v.Find("l")->is_null());
  EXPECT_TRUE(v.Find("m")->is_timestamp());
  EXPECT_EQ(v.Find("n")->as_string(), "1");
  EXPECT_EQ(v.Find("o")->as_string(), "true");
  EXPECT_LT(v.Find("p")->as_float(), 0);
  EXPECT_TRUE(std::isnan(v.Find("q")->as_float()));
}

TEST(YamlTest, EmitsLikeSafeDump) {
  Value::Map m;
  m.emplace_back("z", Value(Value::List{Value("conda-forge"), Value(Value::Map{{"pip", Value(Value::List{Value("a==1")})}})}));
  m.emplace_back("a", Value("2023-12-07 02:46:07.555576"));
  m.emplace_back("n", Value("1.0"));
  m.emplace_back("e", Value(""));
  m.emplace_back("u", Value("caf\xc3\xa9"));
  m.emplace_back("f", Value(1e16));
  m.emplace_back("g", Value(0.0001));
  m.emplace_back("h", Value(1e-5));
  m.emplace_back("l", Value::EmptyList());
  m.emplace_back("q", Value("it's"));
  EXPECT_EQ(DumpYaml(Value(m)),
            "a: '2023-12-07 02:46:07.555576'\n"
            "e: ''\n"
            "f: 1.0e+16\n"
            "g: 0.0001\n"
            "h: 1.0e-05\n"
            "l: []\n"
            "n: '1.0'\n"
            "q: it's\n"
            "u: \"caf\\xE9\"\n"
            "z:\n"
            "- conda-forge\n"
            "- pip:\n"
            "  - a==1\n");
}

TEST(YamlTest, FoldsLongStringsAt80Columns) {
  Value::Map sig;
  sig.emplace_back("inputs", Value("[{\"name\": \"sepal length (cm)\", \"type\": \"double\"}, {\"name\": \"sepal width (cm)\", \"type\": \"double\"}]"));
  Value::Map doc;
  doc.emplace_back("signature", Value(sig));
  EXPECT_EQ(DumpYaml(Value(doc)),
            "signature:\n"
            "  inputs: '[{\"name\": \"sepal length (cm)\", \"type\": \"double\"}, {\"name\": \"sepal width\n"
            "    (cm)\", \"type\": \"double\"}]'\n");
}

TEST(YamlTest, ErrorsNameLineAndColumn) {
  Result<Value> v = ParseYaml("a: 1\nb: [1, 2\n", "conda.yaml");
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), ::testing::StartsWith("conda.yaml:"));
  EXPECT_THAT(v.status().message(), ::testing::HasSubstr("not valid YAML"));
  Result<Value> tag = ParseYaml("a: !!python/object:os.system x\n", "m");
  EXPECT_FALSE(tag.ok());
  EXPECT_THAT(tag.status().message(), ::testing::HasSubstr("unsupported YAML tag"));
}

}  // namespace
}  // namespace pyfunc
