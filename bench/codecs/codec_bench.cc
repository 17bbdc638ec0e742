// codec_bench: CSV and JSON parse throughput of pyfunc's data codecs.
//
// Usage: codec_bench <dir>   (run by bench/codecs/run.sh, which also times pandas and
// json.loads on the same files and prints the ratios)
//
// Generates <dir>/bench.csv (1M rows: int64, float64, short string, int64 with nulls)
// <dir>/wide.csv (500k rows x 20 float64, as pandas writes numpy's rand()) and
// <dir>/bench.json (a dataframe_split request of 300k rows with the same columns),
// parses each several times and prints the best time as "<name> <bytes> <seconds>".
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>

#include "pyfunc/csv.h"
#include "pyfunc/json_codec.h"

namespace {

constexpr int kWideRows = 500000;

double Best(int reps, const std::function<void()>& fn) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    std::chrono::duration<double> d = std::chrono::steady_clock::now() - t0;
    best = std::min(best, d.count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "/tmp";
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unif(-1000, 1000);
  const char* words[] = {"alpha", "beta", "gamma", "delta, with comma", "epsilon"};

  std::string csv = "id,value,label,count\n";
  for (int i = 0; i < 1000000; ++i) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", unif(rng));
    const char* w = words[rng() % 5];
    csv += std::to_string(i) + "," + buf + "," + (std::strchr(w, ',') ? "\"" + std::string(w) + "\"" : w) + "," +
           (i % 10 == 0 ? "" : std::to_string(rng() % 100000)) + "\n";
  }
  std::string json = "{\"dataframe_split\": {\"columns\": [\"id\", \"value\", \"label\", \"count\"], \"data\": [";
  for (int i = 0; i < 300000; ++i) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", unif(rng));
    if (i) json += ", ";
    json += "[" + std::to_string(i) + ", " + buf + ", \"" + words[rng() % 5] + "\", " +
            (i % 10 == 0 ? std::string("null") : std::to_string(rng() % 100000)) + "]";
  }
  json += "]}}";
  // What batch scoring reads: 20 float64 columns as pandas writes numpy's rand().
  std::uniform_real_distribution<double> unit(0, 1);
  std::string wide;
  for (int j = 0; j < 20; ++j) wide += (j ? ",f" : "f") + std::to_string(j);
  wide += "\n";
  for (int i = 0; i < kWideRows; ++i) {
    for (int j = 0; j < 20; ++j) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), j ? ",%.17g" : "%.17g", unit(rng));
      wide += buf;
    }
    wide += "\n";
  }
  std::ofstream(dir + "/bench.csv", std::ios::binary) << csv;
  std::ofstream(dir + "/wide.csv", std::ios::binary) << wide;
  std::ofstream(dir + "/bench.json", std::ios::binary) << json;

  double csv_s = Best(5, [&] {
    auto t = pyfunc::ReadCsvFile(dir + "/bench.csv");
    if (!t.ok() || t->num_rows() != 1000000) std::abort();
  });
  const auto stream = [&](const std::string& file, int threads, int64_t want_rows) {
    pyfunc::CsvReadOptions o;
    o.batch_rows = 65536;
    o.threads = threads;
    return Best(5, [&] {
      auto r = pyfunc::CsvReader::OpenFile(dir + "/" + file, o);
      int64_t rows = 0;
      for (;;) {
        auto b = (*r)->Next();
        if (!b.ok()) std::abort();
        if (!*b) break;
        rows += (*b)->num_rows();
      }
      if (rows != want_rows) std::abort();
    });
  };
  double csv_stream_s = stream("bench.csv", 1, 1000000);
  double csv_stream2_s = stream("bench.csv", 2, 1000000);
  double wide1_s = stream("wide.csv", 1, kWideRows);
  double wide2_s = stream("wide.csv", 2, kWideRows);
  double json_s = Best(5, [&] {
    auto req = pyfunc::ParseScoringRequest(json);
    if (!req.ok() || req->table.num_rows() != 300000) std::abort();
  });
  std::printf("csv %zu %.6f\n", csv.size(), csv_s);
  std::printf("csv_stream %zu %.6f\n", csv.size(), csv_stream_s);
  std::printf("csv_stream2 %zu %.6f\n", csv.size(), csv_stream2_s);
  std::printf("wide %zu %.6f\n", wide.size(), wide1_s);
  std::printf("wide2 %zu %.6f\n", wide.size(), wide2_s);
  std::printf("json %zu %.6f\n", json.size(), json_s);
  return 0;
}
