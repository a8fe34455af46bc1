// The parser of `qemu-img info --output=json` (lib/image/qemu_img_info.hpp), on real and broken output.
#include "image/qemu_img_info.hpp"

#include <boost/test/unit_test.hpp>

namespace {

using vmrt::image::detail::parse_qemu_img_info;

constexpr const char* overlay_output = R"({
    "backing-filename-format": "raw",
    "virtual-size": 67108864,
    "filename": "/tmp/o.qcow2",
    "cluster-size": 65536,
    "format": "qcow2",
    "actual-size": 200704,
    "format-specific": {"type": "qcow2", "data": {"compat": "1.1"}},
    "full-backing-filename": "/images/base.raw",
    "backing-filename": "base.raw",
    "dirty-flag": false
}
)";

void expect_malformed(const std::string& output, const std::string& mentioning) {
    try {
        parse_qemu_img_info(output);
        BOOST_FAIL("accepted: " << output);
    } catch (const vmrt::error& e) {
        BOOST_TEST(e.code() == make_error_code(vmrt::errc::protocol_error));
        BOOST_TEST(std::string(e.what()).find(mentioning) != std::string::npos, e.what());
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(qemu_img_info_test)

BOOST_AUTO_TEST_CASE(an_overlay_with_its_backing_file) {
    const auto info = parse_qemu_img_info(overlay_output);
    BOOST_TEST(info.format == "qcow2");
    BOOST_TEST(info.virtual_size == 67108864U);
    BOOST_TEST(info.actual_size.value_or(0) == 200704U);
    BOOST_TEST(info.backing_file.value_or("") == "/images/base.raw");  // the resolved one
    BOOST_TEST(info.backing_format.value_or("") == "raw");
}

BOOST_AUTO_TEST_CASE(a_raw_image_without_backing_file) {
    const auto info = parse_qemu_img_info(R"({"virtual-size": 1024, "filename": "a", "format": "raw"})");
    BOOST_TEST(info.format == "raw");
    BOOST_TEST(info.virtual_size == 1024U);
    BOOST_TEST(!info.actual_size);
    BOOST_TEST(!info.backing_file);
    BOOST_TEST(!info.backing_format);
}

BOOST_AUTO_TEST_CASE(only_the_recorded_backing_name_when_qemu_could_not_resolve_it) {
    const auto info =
        parse_qemu_img_info(R"({"virtual-size": 1, "format": "qcow2", "backing-filename": "b"})");
    BOOST_TEST(info.backing_file.value_or("") == "b");
}

BOOST_AUTO_TEST_CASE(warnings_before_and_text_after_the_object_are_ignored) {
    const std::string output =
        std::string("qemu-img: warning: something {odd}\n") + overlay_output + "qemu-img: a late message\n";
    BOOST_TEST(parse_qemu_img_info(output).format == "qcow2");
}

BOOST_AUTO_TEST_CASE(malformed_output_is_a_protocol_error_that_says_why) {
    expect_malformed("", "no JSON object");
    expect_malformed("qemu-img: Could not open 'x': No such file\n", "no JSON object");
    expect_malformed(R"({"virtual-size": 1, "format": "raw")", "malformed");  // truncated
    expect_malformed(R"({"virtual-size": 1})", "no \"format\"");
    expect_malformed(R"({"virtual-size": 1, "format": ""})", "no \"format\"");
    expect_malformed(R"({"format": "raw"})", "no \"virtual-size\"");
    expect_malformed(R"({"virtual-size": -5, "format": "raw"})", "virtual-size");
    expect_malformed(R"({"virtual-size": "big", "format": "raw"})", "virtual-size");
    expect_malformed(R"({"virtual-size": 1.5, "format": "raw"})", "virtual-size");
    expect_malformed(R"({"virtual-size": 1, "format": 7})", "\"format\" is not a string");
    expect_malformed(R"({"virtual-size": 1, "format": "raw", "backing-filename": 3})", "backing-filename");
    expect_malformed(R"({"virtual-size": 1, "format": "raw", "actual-size": null})", "actual-size");
    expect_malformed("[1, 2]", "no JSON object");
}

BOOST_AUTO_TEST_SUITE_END()
