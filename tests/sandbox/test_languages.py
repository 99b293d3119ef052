"""Compiled and other languages on the `stdio` kind, in the real sandbox: C, C++, Java, Go,
Rust, JavaScript. Toolchains come from Debian packages (`make toolchains`, part of `make
test`); a language whose toolchain is absent is skipped, and says so."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from sandbox_worker import languages
from sandbox_worker.executor import Executor
from sandbox_worker.kinds import builds
from sandbox_worker.protocol import Job, JobResult, RunStatus, StdioTests

RunLang = Callable[..., JobResult]
CASES = [("1 2\n", "3\n"), ("40 2\n", "42\n"), ("-7 7\n", "0\n")]

SUM = {
    "c": '#include <stdio.h>\nint main(void){long a,b;scanf("%ld %ld",&a,&b);'
         'printf("%ld\\n",a+b);return 0;}',
    "cpp": "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<'\\n';}",
    "java": "import java.util.*;\npublic class Main { public static void main(String[] x) {\n"
            "  Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + s.nextLong()); } }",
    "go": 'package main\nimport "fmt"\nfunc main() { var a, b int; fmt.Scan(&a, &b); '
          "fmt.Println(a + b) }",
    "rust": "use std::io::Read;\nfn main() { let mut s = String::new();\n"
            "std::io::stdin().read_to_string(&mut s).unwrap();\n"
            "let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();\n"
            'println!("{}", v[0] + v[1]); }',
    "javascript": 'const v = require("fs").readFileSync(0, "utf8").trim().split(/\\s+/)'
                  ".map(Number);\nconsole.log(v[0] + v[1]);",
}


def _need(language: str) -> None:
    if languages.version(language) is None:
        pytest.skip(f"no {language} toolchain here (make toolchains installs it)")


@pytest.fixture
def run_lang(executor: Executor) -> RunLang:
    def _run(language: str, code: str, cases: list[tuple[str, str]] = CASES, *,
             timeout_s: float = 10.0, memory_mb: int = 512) -> JobResult:
        _need(language)
        tests = StdioTests(kind="stdio", cases=[{"input": i, "output": o}  # type: ignore[misc]
                                                for i, o in cases])
        result = executor.run(Job(code=code, language=language, tests=tests,
                                  timeout_s=timeout_s, memory_mb=memory_mb))
        assert executor.healthy()
        return result
    return _run


def _statuses(result: JobResult) -> list[str]:
    return [t.status.value for t in result.tests]


@pytest.mark.parametrize("language", sorted(SUM))
def test_honest_program_passes_exactly(run_lang: RunLang, language: str) -> None:
    result = run_lang(language, SUM[language], [*CASES, ("1 1", "3")])
    assert result.status is RunStatus.OK, result.error
    assert _statuses(result) == ["passed", "passed", "passed", "failed"]


@pytest.mark.parametrize("language", ["c", "cpp", "java", "go", "rust"])
def test_compile_error_is_reported_and_bounded(run_lang: RunLang, language: str) -> None:
    result = run_lang(language, SUM[language].replace("a", "undefined_name_q", 1) + "\n}}}(")
    assert result.status is RunStatus.COMPILE_ERROR
    assert result.passed == 0 and _statuses(result) == ["not_run"] * 3
    assert result.error and len(result.error) <= builds.ERROR_CHARS


def test_identical_programs_compile_once(run_lang: RunLang, executor: Executor) -> None:
    _need("cpp")
    code = SUM["cpp"] + "\n// unique to this test: cache probe\n"
    before = builds.CACHE.misses, builds.CACHE.hits
    results: list[JobResult] = []
    threads = [threading.Thread(target=lambda: results.append(run_lang("cpp", code)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.passed for r in results] == [3] * 4
    assert builds.CACHE.misses - before[0] == 1  # one compile for the group
    assert builds.CACHE.hits - before[1] == 3


def test_cache_key_covers_source_compiler_and_flags() -> None:
    _need("cpp")
    cpp, c = languages.LANGUAGES["cpp"], languages.LANGUAGES["c"]
    assert builds.cache_key(cpp, "x") == builds.cache_key(cpp, "x")
    assert builds.cache_key(cpp, "x") != builds.cache_key(cpp, "y")
    assert builds.cache_key(cpp, "x") != builds.cache_key(c, "x")


# --- hostile compiled programs ------------------------------------------------------------


def test_compile_time_bombs_are_bounded(run_lang: RunLang, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    monkeypatch.setattr(builds, "COMPILE_TIMEOUT_S", 5.0)
    bombs = {
        "template recursion": "template<int N> struct F { enum { v = F<N-1>::v + F<N-2>::v }; };\n"
                              "int main() { return F<100000>::v; }",
        "huge constexpr": "constexpr long f(long n) { long s = 0; for (long i = 0; i < n; ++i)"
                          " s += i; return s; }\nconstexpr long x = f(1L << 40);\n"
                          "int main() { return (int)x; }",
        "include a device": "#include </dev/zero>\nint main() {}",
        "include itself": '#include "main.cpp"\nint main() {}',
    }
    for name, code in bombs.items():
        result = run_lang("cpp", code)
        assert result.status is RunStatus.COMPILE_ERROR, name
        assert result.passed == 0, name


def test_native_hostile_programs_are_contained(run_lang: RunLang, isolated: Executor) -> None:
    hostile = {
        "fork bomb": "#include <unistd.h>\nint main(){ for(;;) fork(); }",
        "infinite loop": "int main(){ volatile int x = 1; while (x) {} }",
        "memory hog": "#include <stdlib.h>\n#include <string.h>\n#include <stdio.h>\n"
                      "int main(){ for(;;){ char *p = malloc(1<<26); if(!p) return 3;"
                      " memset(p, 1, 1<<26);} }",
        "exit before flush": '#include <stdio.h>\n#include <unistd.h>\n'
                             'int main(){ printf("3\\n42\\n0\\n"); _exit(0); }',
        "output flood": '#include <stdio.h>\nint main(){ for(;;) fputs("yyyyyyyy", stdout); }',
        "forged frames": '#include <unistd.h>\n#include <stdio.h>\nint main(){ '
                         'for (int fd = 3; fd < 64; ++fd) write(fd, "\\0\\0\\0\\x0b{\\"t\\":\\"ok\\"}", 15);'
                         ' puts("passed"); }',
    }
    for name, code in hostile.items():
        result = run_lang("c", code, CASES[:1], timeout_s=2.0, memory_mb=256)
        assert result.passed == 0, (name, _statuses(result))


def test_native_writes_outside_and_network_are_refused(run_lang: RunLang,
                                                       isolated: Executor) -> None:
    code = r"""
#include <stdio.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
int main() {
  const char *paths[] = {"/usr/cr-probe", "/etc/cr-probe", "/cr-probe", "/tmp/prog/../../cr"};
  for (int i = 0; i < 3; ++i) { FILE *f = fopen(paths[i], "w"); printf(f ? "wrote " : "denied "); }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0}; a.sin_family = AF_INET; a.sin_port = htons(80);
  inet_pton(AF_INET, "1.1.1.1", &a.sin_addr);
  printf(connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? "online\n" : "offline\n");
}
"""
    assert run_lang("c", code, [("", "denied denied denied offline")]).passed == 1


@pytest.mark.parametrize("language", ["java", "javascript"])
def test_managed_runtimes_loop_and_hog_contained(run_lang: RunLang, language: str) -> None:
    loop = {"java": "public class Main { public static void main(String[] a) { while (true) {} } }",
            "javascript": "while (true) {}"}[language]
    hog = {"java": "import java.util.*;\npublic class Main { public static void main(String[] a)"
                   " { List<long[]> l = new ArrayList<>(); while (true) l.add(new long[1 << 20]); } }",
           "javascript": "const l = []; while (true) l.push(new Array(1 << 20).fill(1.5));"}[language]
    assert _statuses(run_lang(language, loop, CASES[:1], timeout_s=2.0)) == ["timeout"]
    result = run_lang(language, hog, CASES[:1], timeout_s=10.0, memory_mb=256)
    assert result.passed == 0 and result.tests[0].status.value in ("error", "timeout")


# per language: a loop, a memory hog, a fork bomb (each must pass nothing) and a write outside
# the sandbox that must be refused (the program prints "denied"; only then does the case pass)
HOSTILE_BY_LANGUAGE = {
    "go": {
        "loop": "package main\nfunc main() { for {} }",
        "hog": "package main\nfunc main() { var l [][]byte\n for { b := make([]byte, 1<<26)\n"
               " for i := range b { b[i] = 1 }\n l = append(l, b) } }",
        "fork": 'package main\nimport ("os"; "syscall")\nfunc main() { for {\n'
                " syscall.ForkExec(\"/proc/self/exe\", []string{os.Args[0]}, nil) } }",
        "write": 'package main\nimport ("fmt"; "os")\nfunc main() {\n'
                 ' if os.WriteFile("/usr/cr-probe", []byte("x"), 0o644) != nil { fmt.Println("denied")'
                 ' } else { fmt.Println("wrote") } }',
    },
    "rust": {
        "loop": "fn main() { loop {} }",
        "hog": "fn main() { let mut v: Vec<Vec<u8>> = Vec::new(); loop { v.push(vec![1u8; 1 << 26]); } }",
        "fork": "use std::process::Command;\nfn main() { loop { let _ = Command::new(\"/proc/self/exe\")"
                ".spawn(); } }",
        "write": 'fn main() { if std::fs::write("/usr/cr-probe", "x").is_err() { println!("denied"); }'
                 ' else { println!("wrote"); } }',
    },
    "java": {
        "fork": "public class Main { public static void main(String[] a) throws Exception {\n"
                " while (true) { try { new ProcessBuilder(\"/proc/self/exe\", \"-cp\", \"/tmp/prog\","
                " \"Main\").start(); } catch (Exception e) {} } } }",
        "write": "import java.nio.file.*;\npublic class Main { public static void main(String[] a) {\n"
                 " try { Files.writeString(Path.of(\"/usr/cr-probe\"), \"x\"); System.out.println(\"wrote\"); }"
                 " catch (Exception e) { System.out.println(\"denied\"); } } }",
    },
    "javascript": {
        "fork": "const cp = require('child_process');\n"
                "while (true) { try { cp.spawn(process.execPath, [__filename]); } catch (e) {} }",
        "write": "try { require('fs').writeFileSync('/usr/cr-probe', 'x'); console.log('wrote'); }"
                 " catch (e) { console.log('denied'); }",
    },
}


@pytest.mark.parametrize(("language", "name"), [
    (lang, name) for lang, progs in sorted(HOSTILE_BY_LANGUAGE.items()) for name in sorted(progs)])
def test_hostile_programs_per_language(run_lang: RunLang, isolated: Executor, language: str,
                                       name: str) -> None:
    code = HOSTILE_BY_LANGUAGE[language][name]
    if name == "write":
        assert run_lang(language, code, [("", "denied")]).passed == 1
        return
    result = run_lang(language, code, [("", "3")], timeout_s=2.0, memory_mb=256)
    assert result.status is RunStatus.OK, result.error
    assert result.passed == 0 and result.tests[0].status.value in ("timeout", "error", "killed")
