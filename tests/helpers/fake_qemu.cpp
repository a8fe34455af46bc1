// vmrt-fake-qemu: stands in for qemu-system-x86_64 where a test needs a QMP peer that misbehaves
// in a way a real QEMU cannot be made to (plain C++, no Boost). It takes QEMU's command line,
// finds the QMP socket it was handed (`-chardev socket,id=qmp,fd=N`) and the VM name
// (`-name guest=NAME,...`), and the name says what to do:
//   garbage         write a line that is not JSON instead of the greeting, then wait
//   bad-greeting    write a greeting whose version is not an object, then wait
//   bad-reply       greet properly, then answer qmp_capabilities with an unknown id, then wait
//   dies-on-stop    greet and negotiate properly, answer every command with {"return": {}}, and
//                   exit with status 3 when the command `stop` arrives (a VMM dying mid-call)
//   anything else   exit with status 2 at once
// "Wait" means: until QMP's peer hangs up or 10 minutes pass (a leaked helper cannot live on).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

const char* greeting =
    R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"}, "capabilities": []}})"
    "\n";

void send(int fd, const std::string& text) {
    for (std::size_t done = 0; done < text.size();) {
        auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n <= 0) std::exit(4);
        done += static_cast<std::size_t>(n);
    }
}

// One command line ("{...}\n") from the client, or "" at end of file.
std::string read_line(int fd) {
    std::string line;
    char c;
    while (::read(fd, &c, 1) == 1) {
        if (c == '\n') return line;
        line += c;
    }
    return line;
}

// The raw text of the "id" member of a command (vmrt's client sends a number).
std::string id_of(const std::string& command) {
    auto at = command.find("\"id\":");
    if (at == std::string::npos) return "null";
    at += 5;
    auto end = command.find_first_of(",}", at);
    return command.substr(at, end - at);
}

void wait_for_hangup(int fd) {
    for (int i = 0; i < 600 && !read_line(fd).empty(); ++i) {
    }
    ::sleep(1);
}

}  // namespace

int main(int argc, char** argv) {
    int qmp = -1;
    std::string name;
    for (int i = 1; i + 1 < argc; ++i) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "-chardev" && value.rfind("socket,id=qmp,fd=", 0) == 0)
            qmp = std::atoi(value.c_str() + std::strlen("socket,id=qmp,fd="));
        if (flag == "-name" && value.rfind("guest=", 0) == 0) name = value.substr(6, value.find(',') - 6);
    }
    if (qmp < 0) {
        std::fprintf(stderr, "vmrt-fake-qemu: no -chardev socket,id=qmp,fd=N\n");
        return 2;
    }
    if (name == "garbage") {
        send(qmp, "this is not JSON\n");
        wait_for_hangup(qmp);
        return 0;
    }
    if (name == "bad-greeting") {
        send(qmp, R"({"QMP": {"version": "seven", "capabilities": []}})"
                  "\n");
        wait_for_hangup(qmp);
        return 0;
    }
    send(qmp, greeting);
    if (name == "bad-reply") {
        (void)read_line(qmp);
        send(qmp, R"({"return": {}, "id": 999999})"
                  "\n");
        wait_for_hangup(qmp);
        return 0;
    }
    if (name == "dies-on-stop") {
        for (std::string command = read_line(qmp); !command.empty(); command = read_line(qmp)) {
            if (command.find(R"("execute":"stop")") != std::string::npos) {
                std::fprintf(stderr, "vmrt-fake-qemu: dying in the middle of 'stop'\n");
                return 3;
            }
            send(qmp, R"({"return": {}, "id": )" + id_of(command) + "}\n");
        }
        return 0;
    }
    std::fprintf(stderr, "vmrt-fake-qemu: unknown mode '%s'\n", name.c_str());
    return 2;
}
