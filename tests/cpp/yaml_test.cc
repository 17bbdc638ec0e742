// YAML typing and emission as PyYAML does them. (The randomized comparison against
// the real PyYAML lives in tests/python; these cases pin the rules.)
#include "pyfunc/yaml.h"

#include <chrono>
#include <cmath>
#include <random>
#include <regex>

#include "test_util.h"

namespace pyfunc {
namespace {

Value Parse(const std::string& text) {
  Result<Value> v = ParseYaml(text, "t");
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : Value();
}

TEST(YamlTest, ResolvesPlainScalarsAsYaml11) {
  Value v = Parse(
      "a: yes\nb: Off\nc: 0x1F\nd: 017\ne: 1_000\nf: 1:20\ng: 1.5\nh: .5\ni: 1e5\n"
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
  m.emplace_back(
      "z", Value(Value::List{Value("conda-forge"), Value(Value::Map{{"pip", Value(Value::List{Value("a==1")})}})}));
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
  sig.emplace_back("inputs", Value("[{\"name\": \"sepal length (cm)\", \"type\": \"double\"}, {\"name\": \"sepal width "
                                   "(cm)\", \"type\": \"double\"}]"));
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

// --- Hostile documents: each must give a Status, fast, never abort ------------------

std::string ErrorOf(const std::string& text) {
  Result<Value> v = ParseYaml(text, "MLmodel");
  EXPECT_FALSE(v.ok()) << "parsed: " << (v.ok() ? ToJson(*v) : "");
  return v.ok() ? "" : v.status().message();
}

double SecondsToParse(const std::string& text) {
  const auto start = std::chrono::steady_clock::now();
  (void)ParseYaml(text, "MLmodel");
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string AliasBomb(int levels) {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= levels; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) text += (k ? ", *a" : "*a") + std::to_string(i - 1);
    text += "]\n";
  }
  return text;
}

TEST(YamlHostileTest, AliasBombIsRefusedWithItsPosition) {
  // 9 levels of nested aliases (under 1 KB) expanded into 9^9 nodes until memory ran out.
  const std::string bomb = AliasBomb(9);
  const auto start = std::chrono::steady_clock::now();
  const std::string message = ErrorOf(bomb);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
  EXPECT_THAT(message, ::testing::MatchesRegex("MLmodel:[0-9]+:[0-9]+: alias expansion exceeds [0-9]+ nodes.*"));
}

TEST(YamlHostileTest, ModestAliasesStillExpand) {
  Value v = Parse("base: &b {x: 1, y: [1, 2]}\ncopy: *b\nlist: [*b, *b]\n");
  EXPECT_EQ(*v.Find("copy"), *v.Find("base"));
  EXPECT_EQ(v.Find("list")->as_list().size(), 2u);
  EXPECT_EQ(v.Find("list")->as_list()[1], *v.Find("base"));
  // Three levels of the bomb (729 nodes) are within the budget.
  Value small = Parse(AliasBomb(3));
  EXPECT_EQ(small.Find("a3")->as_list().size(), 9u);
}

TEST(YamlHostileTest, ManyKeysParseInLinearTime) {
  // A mapping of n keys took O(n^2): 400,000 keys (10 MB) did not parse in 2 minutes.
  std::string text = "metadata:\n";
  for (int i = 0; i < 200000; ++i) text += "  key" + std::to_string(i) + ": value\n";
  EXPECT_LT(SecondsToParse(text), 10.0);
  Value v = Parse(text);
  EXPECT_EQ(v.Find("metadata")->as_map().size(), 200000u);
  EXPECT_EQ(v.Find("metadata")->as_map()[199999].first, "key199999");
}

TEST(YamlHostileTest, RepeatedKeyKeepsFirstPositionAndLastValue) {
  Value v = Parse("a: 1\nb: 2\na: 3\n");
  ASSERT_EQ(v.as_map().size(), 2u);
  EXPECT_EQ(v.as_map()[0].first, "a");
  EXPECT_EQ(v.as_map()[0].second.as_int(), 3);  // as a Python dict built by PyYAML
  EXPECT_EQ(v.as_map()[1].first, "b");
}

TEST(YamlHostileTest, InvalidUtf8IsRefusedWhereItIs) {
  // Bytes that are not UTF-8 (an overlong 3-byte form) passed the repair step, and the
  // JSON writer then threw in `pyfunc info --json` and in model loading. PyYAML (MLflow)
  // refuses the file: it reads MLmodel as UTF-8 text.
  EXPECT_EQ(ErrorOf("flavors:\n \xe0\x8f\x86:\n  e:"), "MLmodel:2:2: not valid UTF-8 (byte 0xE0)");
  EXPECT_EQ(ErrorOf("a: \xed\xa0\x80\n"), "MLmodel:1:4: not valid UTF-8 (byte 0xED)");      // a surrogate
  EXPECT_EQ(ErrorOf("a: \xf4\x90\x80\x80\n"), "MLmodel:1:4: not valid UTF-8 (byte 0xF4)");  // > U+10FFFF
  EXPECT_EQ(ErrorOf("a: b\xc3"), "MLmodel:1:5: not valid UTF-8 (byte 0xC3)");               // truncated
}

TEST(YamlHostileTest, ControlCharactersAreRefusedAsPyYamlDoes) {
  EXPECT_EQ(ErrorOf("a: x\x01y\n"), "MLmodel:1:5: unacceptable character #x0001: special characters are not allowed");
  EXPECT_THAT(ErrorOf(std::string("a: \0\n", 5)), ::testing::HasSubstr("unacceptable character #x0000"));
  // Escaped, they are fine.
  EXPECT_EQ(Parse("a: \"x\\x01y\\0\"\n").Find("a")->as_string(), std::string("x\x01y\0", 4));
}

TEST(YamlHostileTest, TaggedNumbersThatDoNotParseAreErrors) {
  // `!!int :f` threw an uncaught std::invalid_argument from std::stod.
  EXPECT_EQ(ErrorOf("!!int :f"), "MLmodel:1:1: cannot construct an int from ':f'");
  EXPECT_EQ(ErrorOf("a: !!float :f\n"), "MLmodel:1:4: cannot construct a float from ':f'");
  EXPECT_EQ(ErrorOf("a: !!int 0x_\n"), "MLmodel:1:4: cannot construct an int from '0x_'");
  EXPECT_EQ(ErrorOf("a: !!float abc\n"), "MLmodel:1:4: cannot construct a float from 'abc'");
  Value v = Parse("a: !!float 1e400\nb: !!int '12'\nc: !!float '1:30.5'\n");
  EXPECT_TRUE(std::isinf(v.Find("a")->as_float()));  // Python's float('1e400')
  EXPECT_EQ(v.Find("b")->as_int(), 12);
  EXPECT_EQ(v.Find("c")->as_float(), 90.5);
}

TEST(YamlHostileTest, HugeSexagesimalIntegersAreErrorsNotOverflow) {
  // 310 digits then ":00" threw std::out_of_range from std::stod.
  EXPECT_THAT(ErrorOf(std::string(310, '1') + ":00"), ::testing::HasSubstr("does not fit in 64 bits"));
  // A base-60 integer beyond int64 overflowed (undefined behaviour, printed as INT64_MIN).
  // PyYAML makes a Python int of any size; a Value holds int64, so it is an error, as for
  // a decimal integer of that size.
  EXPECT_EQ(ErrorOf("1111111111111111119:9"), "MLmodel:1:1: integer 1111111111111111119:9 does not fit in 64 bits");
  EXPECT_EQ(ErrorOf("-153722867280912930:9"), "MLmodel:1:1: integer -153722867280912930:9 does not fit in 64 bits");
  EXPECT_EQ(Parse("153722867280912930:7").as_int(), INT64_MAX);
  EXPECT_EQ(Parse("-153722867280912930:8").as_int(), INT64_MIN);
  EXPECT_EQ(Parse("1:2:3").as_int(), 3723);
  EXPECT_EQ(Parse("-1_0:00").as_int(), -600);
}

TEST(YamlHostileTest, LongNumericScalarsDoNotOverflowTheStack) {
  // A plain scalar of 50,000 digits overflowed the stack inside std::regex (exit 139).
  EXPECT_THAT(ErrorOf(std::string(50000, '7')), ::testing::HasSubstr("does not fit in 64 bits"));
  Value f = Parse(std::string(50000, '7') + ".5");
  EXPECT_TRUE(std::isinf(f.as_float()));  // Python's float() of that text
  EXPECT_TRUE(Parse("2001-12-14" + std::string(50000, ' ') + "x").is_string());
  EXPECT_TRUE(Parse(std::string(50000, '1') + ":" + std::string(50000, '0')).is_string());
}

TEST(YamlHostileTest, DeepNestingIsAnError) {
  EXPECT_THAT(ErrorOf("a: " + std::string(5000, '[') + std::string(5000, ']')), ::testing::HasSubstr("MLmodel"));
}

// The PyYAML resolver expressions (resolver.py), for comparing the hand-written matchers
// on short random strings (std::regex is fine on test input of a few bytes).
std::string RegexKind(const std::string& s) {
  static const std::regex kBool("^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$");
  static const std::regex kFloat(R"(^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?)"
                                 R"(|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?)"
                                 R"(|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*)"
                                 R"(|[-+]?\.(?:inf|Inf|INF))"
                                 R"(|\.(?:nan|NaN|NAN))$)");
  static const std::regex kInt(R"(^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*))"
                               R"(|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$)");
  static const std::regex kNull("^(?:~|null|Null|NULL|)$");
  static const std::regex kTimestamp(R"(^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9])"
                                     R"(|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?)"
                                     R"((?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?)"
                                     R"((?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$)");
  const char c = s[0];
  const auto in = [c](const char* set) { return std::string_view(set).find(c) != std::string_view::npos; };
  if (in("yYnNtTfFoO") && std::regex_match(s, kBool)) return "bool";
  if (in("-+0123456789.") && std::regex_match(s, kFloat)) return "float";
  if (in("-+0123456789") && std::regex_match(s, kInt)) return "int";
  if (in("~nN") && std::regex_match(s, kNull)) return "NoneType";
  if (in("0123456789") && std::regex_match(s, kTimestamp)) return "datetime";
  return "str";
}

TEST(YamlTest, ScalarResolutionMatchesPyYamlExpressions) {
  std::mt19937 rng(11);
  const std::string alphabet = "0123456789_.:-+eExbafinNIFTtZ ";
  const std::vector<std::string> seeds = {"2001-12-14",
                                          "2001-1-2 3:04:05",
                                          "1:20",
                                          "0x1F",
                                          "0b10",
                                          "1.5e+3",
                                          ".inf",
                                          "-.Inf",
                                          ".NaN",
                                          "012",
                                          "1_000",
                                          "+1",
                                          "2001-12-14t21:59:43.10-05"};
  int compared = 0;
  for (int n = 0; n < 60000; ++n) {
    std::string s;
    if (n % 3 == 0) {
      s = seeds[rng() % seeds.size()];
      for (int k = rng() % 3; k > 0; --k) s[rng() % s.size()] = alphabet[rng() % alphabet.size()];
    } else {
      for (int k = 1 + rng() % 8; k > 0; --k) s += alphabet[rng() % alphabet.size()];
    }
    // Only texts that stay one plain scalar in `v: <text>`.
    if (s.front() == ' ' || s.back() == ' ' || s.back() == ':' || s.find(": ") != std::string::npos ||
        s.front() == '-' && (s.size() == 1 || s[1] == ' ') || s.find(" #") != std::string::npos) {
      continue;
    }
    Result<Value> v = ParseYaml("v: " + s + "\n", "t");
    std::string got;
    if (!v.ok()) {
      got = v.status().message().find("integer") != std::string::npos ? "int" : v.status().message();
    } else {
      got = v->Find("v")->TypeName();
    }
    ASSERT_EQ(got, RegexKind(s)) << "text: '" << s << "'";
    ++compared;
  }
  EXPECT_GT(compared, 30000);
}

// --- What pyfunc writes, it reads back --------------------------------------------

TEST(YamlHostileTest, WrittenDocumentsReadBack) {
  // The writer wrote "\U001FFFFF" for bytes that are not UTF-8, which the reader refused.
  // A Value can hold any bytes (from the C++ API); the writer now writes U+FFFD for each
  // byte that does not start valid UTF-8.
  Value::Map m;
  m.emplace_back("bad4", Value(std::string("\xf7\xbf\xbf\xbf")));
  m.emplace_back("overlong", Value(std::string("\xe0\x8f\x86")));
  m.emplace_back("nel", Value(std::string("a\xc2\x85"
                                          "b\xc2\xa0"
                                          "c")));
  m.emplace_back("ctl", Value(std::string("x\x01\x7f\0", 4)));
  m.emplace_back("astral", Value(std::string("\xf0\x9f\x98\x80")));
  const std::string written = DumpYaml(Value(m));
  EXPECT_EQ(written.find("\\U001FFFFF"), std::string::npos);
  Result<Value> back = ParseYaml(written, "MLmodel");
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << written;
  EXPECT_EQ(back->Find("bad4")->as_string(), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(back->Find("overlong")->as_string(), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_EQ(back->Find("nel")->as_string(),
            "a\xc2\x85"
            "b\xc2\xa0"
            "c");
  EXPECT_EQ(back->Find("ctl")->as_string(), std::string("x\x01\x7f\0", 4));
  EXPECT_EQ(back->Find("astral")->as_string(), "\xf0\x9f\x98\x80");
  EXPECT_EQ(DumpYaml(*back), written);
}

TEST(YamlHostileTest, FuzzInputsThatLoadRoundTrip) {
  // Every input of the fuzz corpus that reads must write and read back to the same Value.
  const std::vector<std::string> inputs = {
      "flavors:\n \xc3\xa0\xc2\x8f:\n  e:",
      "a: \"\\N\\_\\L\\P\\x85\\ue000\\U0001F600\"\n",
      "? [a, b]\n: c\n",
      "a: 0o17\nb: 1:20\nc: 1_0.5\nd: 2001-12-14 21:59:43.10 -5\ne: -.INF\n",
      "- &x {a: 1}\n- *x\n- !!str 12\n- !!float 3\n",
      "a: |\n  line\n   more\nb: >-\n  folded\n  text\n",
      std::string(300, '9') + ".5",
  };
  for (const std::string& text : inputs) {
    SCOPED_TRACE(text.substr(0, 60));
    Result<Value> first = ParseYaml(text, "MLmodel");
    if (!first.ok()) continue;
    DumpYamlOptions insertion_order;
    insertion_order.sort_keys = false;
    const std::string written = DumpYaml(*first, insertion_order);
    Result<Value> second = ParseYaml(written, "MLmodel");
    ASSERT_TRUE(second.ok()) << second.status().ToString() << "\n" << written;
    EXPECT_EQ(*second, *first) << written;
  }
}

// --- ToJson --------------------------------------------------------------------------

TEST(ValueJsonTest, InvalidUtf8BecomesReplacementCharacters) {
  // A JSON writer threw on bytes that are not UTF-8, in `pyfunc info --json` and model loading.
  Value::Map m;
  m.emplace_back(std::string("k\xe0\x8f"), Value(std::string("\xff\xc3\xa9\x01\"\\")));
  EXPECT_EQ(ToJson(Value(m)), R"({"k\ufffd\ufffd": "\ufffd\u00e9\u0001\"\\"})");
}

// json.dumps(m) and json.dumps(m, indent=2) of Python, byte for byte.
TEST(ValueJsonTest, LayoutIsPythonJsonDumps) {
  Value::Map inner;
  inner.emplace_back("x", Value(1.5));
  inner.emplace_back("y", Value::EmptyList());
  inner.emplace_back("z", Value::EmptyMap());
  Value::Map m;
  m.emplace_back("b", Value(Value::List{Value(1), Value(nullptr), Value(true)}));
  m.emplace_back("a", Value(inner));
  m.emplace_back("f", Value(1e16));
  m.emplace_back("n", Value(std::nan("")));
  EXPECT_EQ(ToJson(Value(m)), R"({"b": [1, null, true], "a": {"x": 1.5, "y": [], "z": {}}, "f": 1e+16, "n": NaN})");
  EXPECT_EQ(ToJson(Value(m), 2),
            "{\n  \"b\": [\n    1,\n    null,\n    true\n  ],\n  \"a\": {\n    \"x\": 1.5,\n    \"y\": [],\n"
            "    \"z\": {}\n  },\n  \"f\": 1e+16,\n  \"n\": NaN\n}");
}

TEST(ValueJsonTest, StringsAreEscapedAsJsonDumpsWithEnsureAscii) {
  // json.dumps("\U0001F600\u00e9\u20ac") in Python; an overlong form and a surrogate are not
  // UTF-8, so each of their bytes becomes U+FFFD.
  EXPECT_EQ(ToJson(Value(std::string("\xf0\x9f\x98\x80\xc3\xa9\xe2\x82\xac"))), R"("\ud83d\ude00\u00e9\u20ac")");
  EXPECT_EQ(ToJson(Value(std::string("\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80"))),
            R"("\ufffd\ufffd|\ufffd\ufffd\ufffd|\ufffd\ufffd\ufffd\ufffd")");
}

TEST(ValueJsonTest, ManyKeysAreLinear) {
  // An ordered JSON map that looks each key up linearly made a 400,000-key map quadratic.
  Value::Map m;
  for (int i = 0; i < 300000; ++i) m.emplace_back("k" + std::to_string(i), Value(i));
  const auto start = std::chrono::steady_clock::now();
  const std::string json = ToJson(Value(std::move(m)));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
  EXPECT_EQ(json.substr(0, 18), "{\"k0\": 0, \"k1\": 1,");
}

}  // namespace
}  // namespace pyfunc
