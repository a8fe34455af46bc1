// bench/seed_iso: how long does it take to make a cloud-init seed ISO?
//
//  * vmrt: render the typed seed config to YAML and write the ISO 9660 image in-process with
//    libarchive (vmrt::image::write_seed_iso and its parts);
//  * comparison, in the same run on the same files: what vm-rs does, spawning
//    `genisoimage -output X -volid cidata -joliet -rock DIR` and waiting for it. The files are
//    written to DIR beforehand and only the spawn and wait are timed, which favours genisoimage.
//
// Two pairs are compared, so that durability is equal on both sides:
//  * "to file": our image written with write(2), no fsync, like genisoimage's output;
//  * "durable": write_seed_iso (temp file, fsync, rename, fsync of the directory) against
//    genisoimage followed by fsync of its output and of the directory.
// Usage: seed_iso [RUNS]   (default 200)
#include <vmrt/image/iso9660.hpp>
#include <vmrt/image/seed.hpp>
#include <vmrt/io/atomic_file.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace vmrt::image;
using clock_type = std::chrono::steady_clock;

// A seed like a small cluster node's: three users with keys, a few config files, packages,
// commands, and two NICs matched by MAC with static addresses, routes and DNS.
seed_config realistic_seed() {
    seed_config c;
    c.meta_data = {"i-0a1b2c3d4e5f", "worker-3.cluster.example"};
    for (const char* name : {"ops", "deploy", "monitor"}) {
        seed_user u;
        u.name = name;
        u.shell = "/bin/bash";
        u.groups = {"adm", "systemd-journal"};
        u.sudo = {"ALL=(ALL) NOPASSWD:ALL"};
        for (int k = 0; k < 2; ++k)
            u.ssh_authorized_keys.push_back("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" +
                                            std::string(43, 'A' + k) + " " + name + "@laptop" +
                                            std::to_string(k));
        c.user_data.users.push_back(u);
    }
    c.user_data.packages = {"curl", "jq", "nginx", "chrony", "prometheus-node-exporter"};
    std::string config;
    for (int i = 0; i < 60; ++i)
        config += "setting_" + std::to_string(i) + ": value with: colons # and hashes\n";
    c.user_data.write_files = {
        {"/etc/app/config.yaml", config, 0640, "root:root", false},
        {"/etc/nginx/conf.d/app.conf",
         "server { listen 80; location / { proxy_pass http://127.0.0.1:8080; } }\n", 0644, std::nullopt,
         false},
        {"/etc/motd", "worker-3: managed by vmrt\n", std::nullopt, std::nullopt, true},
        {"/usr/local/bin/health", "#!/bin/sh\ncurl -fsS http://127.0.0.1:8080/health\n", 0755, std::nullopt,
         false},
    };
    c.user_data.runcmd = {{"systemctl", "enable", "--now", "nginx"},
                          {"sh", "-c", "echo \"VMRS_READY $(hostname -I | cut -d' ' -f1)\" > /dev/console"}};
    seed_network_config net;
    for (int i = 0; i < 2; ++i) {
        seed_ethernet e;
        e.id = "nic" + std::to_string(i);
        e.match_macaddress = "52:54:00:12:34:5" + std::to_string(i);
        e.set_name = e.id;
        e.addresses = {"10.0." + std::to_string(i) + ".13/24"};
        if (i == 0) e.routes = {{"default", "10.0.0.1", 100u}};
        e.nameservers = {"10.0.0.2", "1.1.1.1"};
        e.search = {"cluster.example"};
        net.ethernets.push_back(e);
    }
    c.network_config = net;
    return c;
}

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

void write_plain(const fs::path& file, const std::string& data) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size()) ||
        ::close(fd) != 0) {
        std::perror("write");
        std::exit(1);
    }
}

void fsync_path(const fs::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) std::perror("fsync");
    if (fd >= 0) ::close(fd);
}

// genisoimage as vm-rs runs it; output to /dev/null so that its messages cost nothing extra.
void run_genisoimage(const fs::path& out, const fs::path& dir) {
    std::vector<std::string> args{"genisoimage", "-output", out.string(), "-volid",
                                  "cidata",      "-joliet", "-rock",      dir.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, "genisoimage", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    int status = 0;
    if (rc != 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::cerr << "seed_iso: genisoimage failed (is it installed? tools/setup installs it)\n";
        std::exit(1);
    }
}

struct series {
    std::string name;
    std::function<void()> run;
    std::vector<double> times;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double p90(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(0.9 * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::max(10, std::atoi(argv[1])) : 200;
    const auto work = fs::temp_directory_path() / ("vmrt-bench-seed-" + std::to_string(::getpid()));
    const auto files_dir = work / "files";
    fs::create_directories(files_dir);

    const auto config = realistic_seed();
    const auto files = seed_iso_files(render_seed(config));
    std::size_t total_bytes = 0;
    for (const auto& [name, contents] : files) {
        write_plain(files_dir / name, contents);
        total_bytes += contents.size();
    }

    std::vector<series> all{
        {"vmrt in memory (render + build)",
         [&] { build_iso9660(seed_iso_files(render_seed(config)), "cidata"); },
         {}},
        {"vmrt to file (render + build + write)",
         [&] {
             write_plain(work / "ours.iso", build_iso9660(seed_iso_files(render_seed(config)), "cidata"));
         },
         {}},
        {"genisoimage (spawn + wait)", [&] { run_genisoimage(work / "theirs.iso", files_dir); }, {}},
        {"vmrt durable (write_seed_iso, fsync)", [&] { write_seed_iso(config, work / "durable.iso"); }, {}},
        {"genisoimage + fsync file and dir",
         [&] {
             run_genisoimage(work / "theirs-durable.iso", files_dir);
             fsync_path(work / "theirs-durable.iso");
             fsync_path(work);
         },
         {}},
    };
    // Every series writes a fresh file: rewriting a truncated file makes ext4 start writeback at
    // close (auto_da_alloc), which would add milliseconds to both sides at random.
    const std::vector<fs::path> outputs{work / "ours.iso", work / "theirs.iso", work / "durable.iso",
                                        work / "theirs-durable.iso"};
    auto clear_outputs = [&] {
        for (const auto& p : outputs) fs::remove(p);
    };
    for (auto& s : all) s.run();  // warm up: page cache, dynamic loader, libarchive's first use
    const auto our_size = fs::file_size(work / "ours.iso"), their_size = fs::file_size(work / "theirs.iso");
    // Rounds of consecutive runs per series: each series runs warm (as a batch of VMs would), and
    // drift in the machine's load spreads over all series alike.
    constexpr int rounds = 10;
    for (int round = 0; round < rounds; ++round) {
        for (auto& s : all) {
            for (int i = round * runs / rounds; i < (round + 1) * runs / rounds; ++i) {
                clear_outputs();
                const auto start = clock_type::now();
                s.run();
                s.times.push_back(seconds_since(start));
            }
        }
    }

    std::printf(
        "seed ISO: %zu files, %zu bytes of YAML; image %ju bytes (vmrt), %ju bytes (genisoimage); %d runs\n",
        files.size(), total_bytes, static_cast<std::uintmax_t>(our_size),
        static_cast<std::uintmax_t>(their_size), runs);
    std::printf("%-42s %12s %12s\n", "", "median", "p90");
    for (const auto& s : all)
        std::printf("%-42s %9.1f us %9.1f us\n", s.name.c_str(), median(s.times) * 1e6, p90(s.times) * 1e6);
    std::printf("speed-up, to file:  genisoimage / vmrt = %.1fx (goal >= 20x)\n",
                median(all[2].times) / median(all[1].times));
    std::printf("speed-up, durable:  genisoimage+fsync / write_seed_iso = %.1fx\n",
                median(all[4].times) / median(all[3].times));
    fs::remove_all(work);
}
