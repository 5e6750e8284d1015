// Well-formedness of generated XML/SVG, checked by libxml2 (an independent parser).
#pragma once

#include <libxml/parser.h>

#include <string>

namespace edgellm::testing {

// "" when `xml` parses as a well-formed document, else libxml2's message.
inline std::string xml_error(const std::string& xml) {
  xmlResetLastError();
  xmlDocPtr doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "mem.svg", nullptr,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (doc) {
    xmlFreeDoc(doc);
    return "";
  }
  const xmlError* e = xmlGetLastError();
  return e && e->message ? std::string(e->message) : "unparseable";
}

// The root element's name ("" when unparseable).
inline std::string xml_root(const std::string& xml) {
  xmlDocPtr doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "mem.svg", nullptr,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  if (!doc) return "";
  xmlNodePtr r = xmlDocGetRootElement(doc);
  std::string n = r ? reinterpret_cast<const char*>(r->name) : "";
  xmlFreeDoc(doc);
  return n;
}

}  // namespace edgellm::testing
