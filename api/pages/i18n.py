"""The product page's words in English and Simplified Chinese; the language comes from ?lang= or Accept-Language."""

from __future__ import annotations

LANGUAGES = {"en": "English", "zh": "简体中文"}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "verified": "Verified",
        "verified_detail": "Every record of this batch is signed by the party that made it and is in the public log.",
        "recalled": "Recalled",
        "recalled_detail": "Do not use this product.",
        "failed": "Verification failed",
        "failed_detail": "The records of this batch do not check out. Do not rely on them.",
        "unknown": "Unknown product",
        "unknown_detail": "This code does not match any batch in the ledger. The product may not be genuine.",
        "bad_link": "This is not a valid product link.",
        "product": "Product",
        "sku_lot": "SKU / lot",
        "gtin": "GTIN",
        "sla": "Delivery status",
        "origin": "Origin",
        "producer": "Producer",
        "operator_attested": "(registered by the platform operator)",
        "country": "Country",
        "region": "Region",
        "facility": "Facility",
        "produced": "Produced",
        "quantity": "Quantity",
        "documents": "Documents",
        "inspections": "Inspections",
        "no_inspections": "No inspections recorded.",
        "inspector": "Inspector",
        "standard": "Standard",
        "result": "Result",
        "result_pass": "Pass",
        "result_fail": "Fail",
        "result_conditional": "Conditional",
        "date": "Date",
        "report": "Report SHA-256",
        "journey": "Journey",
        "no_journey": "No handoffs recorded yet.",
        "handed": "handed to",
        "delivered": "Delivered",
        "shipment": "Shipment",
        "placed": "Ordered",
        "promised": "Promised by",
        "sla_on_time": "Delivered on time",
        "sla_late": "Delivered late",
        "sla_overdue": "Overdue",
        "sla_at_risk": "At risk of arriving late",
        "sla_in_transit": "In transit",
        "sla_cancelled": "Order cancelled",
        "recall_on": "Recalled on",
        "reason": "Reason",
        "curious": "For the curious",
        "curious_intro": "Each record is an entry of a public, append-only log; the log's signed checkpoint "
        "commits to all of them.",
        "log_index": "Log index",
        "entry_hash": "Entry hash",
        "checkpoint": "Checkpoint",
        "log_key": "Log key (pinned in this page)",
        "verify_yourself": "Verify it yourself:",
        "certificate": "Certificate",
        "certificate_pdf": "Certificate of authenticity (PDF)",
        "certificate_detail": "Signed by the ledger; it carries its own evidence. Check it with "
        "chainproof certificate verify.",
        "certificate_revoked": "The recall revoked this batch's certificates.",
        "certificate_none": "No certificate: this batch does not verify.",
        "events_shown": "Showing {shown} of this batch's {total} events. Your browser checks the ones shown; "
        "the server has checked them all.",
        "older_events": "Older events",
        "newest_events": "Newest events",
        "inspections_shown": "The latest {shown} of {total} inspections.",
        "more_problems": "…and {n} more.",
        "label_ok": "The log key and the origin match the ones printed on this label.",
        "recall_stands": "Checked in your browser: the records are genuine, and so is the recall. Do not use this "
        "product.",
        "shipment_unknown": "There is no shipment {id} in this batch: check the link or the order number.",
        "no_label": "Opened without the label's code (#k=…&o=…): this check rests on the log key the server gave.",
        "browser_checking": "Checking in your browser…",
        "browser_ok": "Verified in your browser: signatures, hash links and log inclusion all check out.",
        "browser_failed": "Your browser found a problem:",
        "browser_unsupported": "Your browser cannot check Ed25519 signatures itself; showing the server's verdict.",
        "server_verdict": "Server's verdict",
        "problems": "What failed",
        "language": "Language",
        "event_origin": "Origin recorded",
        "event_inspection": "Inspected",
        "event_shipment": "Order placed",
        "event_handoff": "Handoff",
        "event_delivery": "Delivered",
        "event_recall": "Recall",
        "event_shipment_cancel": "Order cancelled",
        "temperature": "Temperature",
        "by": "by",
    },
    "zh": {
        "verified": "已验证",
        "verified_detail": "该批次的每条记录均由记录方签名，并已写入公开日志。",
        "recalled": "已召回",
        "sku_lot": "库存单位 / 批号",
        "gtin": "商品条码",
        "sla": "送达状态",
        "recalled_detail": "请勿使用此产品。",
        "failed": "验证失败",
        "failed_detail": "该批次的记录未通过校验，请勿信赖。",
        "unknown": "未知产品",
        "unknown_detail": "此码不对应账本中的任何批次，该产品可能不是正品。",
        "bad_link": "这不是有效的产品链接。",
        "product": "产品",
        "origin": "产地",
        "producer": "生产商",
        "operator_attested": "（由平台运营方登记）",
        "country": "国家",
        "region": "地区",
        "facility": "工厂",
        "produced": "生产时间",
        "quantity": "数量",
        "documents": "文件",
        "inspections": "检验",
        "no_inspections": "暂无检验记录。",
        "inspector": "检验机构",
        "standard": "标准",
        "result": "结果",
        "result_pass": "合格",
        "result_fail": "不合格",
        "result_conditional": "有条件合格",
        "date": "日期",
        "report": "报告 SHA-256",
        "journey": "运输历程",
        "no_journey": "暂无交接记录。",
        "handed": "交给",
        "delivered": "已送达",
        "shipment": "订单",
        "placed": "下单时间",
        "promised": "承诺送达",
        "sla_on_time": "按时送达",
        "sla_late": "延迟送达",
        "sla_overdue": "已超时",
        "sla_at_risk": "可能延迟",
        "sla_in_transit": "运输中",
        "sla_cancelled": "订单已取消",
        "recall_on": "召回日期",
        "reason": "原因",
        "curious": "技术细节",
        "curious_intro": "每条记录都是公开、只可追加日志中的一个条目；日志的签名检查点涵盖全部条目。",
        "log_index": "日志序号",
        "entry_hash": "条目哈希",
        "checkpoint": "检查点",
        "log_key": "日志公钥（已固定在本页）",
        "verify_yourself": "自行验证：",
        "certificate": "证书",
        "certificate_pdf": "真品证书（PDF）",
        "certificate_detail": "由账本签发，并附带其全部证据。可用 chainproof certificate verify 校验。",
        "certificate_revoked": "召回已撤销本批次的全部证书。",
        "certificate_none": "无证书：本批次未通过验证。",
        "events_shown": "显示本批次 {total} 个事件中的 {shown} 个。您的浏览器校验所显示的事件；服务器已校验全部事件。",
        "older_events": "更早的事件",
        "newest_events": "最新事件",
        "inspections_shown": "最近 {shown} 次检验（共 {total} 次）。",
        "more_problems": "……另有 {n} 项。",
        "label_ok": "日志公钥和产地记录与本标签上印的一致。",
        "recall_stands": "已在您的浏览器中校验：记录真实，召回同样属实。请勿使用此产品。",
        "shipment_unknown": "本批次中没有订单 {id}：请检查链接或订单号。",
        "no_label": "打开时未带标签上的代码（#k=…&o=…）：本次校验以服务器提供的日志公钥为准。",
        "browser_checking": "正在您的浏览器中校验…",
        "browser_ok": "已在您的浏览器中验证：签名、哈希链接和日志收录均无误。",
        "browser_failed": "您的浏览器发现问题：",
        "browser_unsupported": "您的浏览器无法自行校验 Ed25519 签名；显示服务器的结论。",
        "server_verdict": "服务器结论",
        "problems": "失败项",
        "language": "语言",
        "event_origin": "登记产地",
        "event_inspection": "检验",
        "event_shipment": "下单",
        "event_handoff": "交接",
        "event_delivery": "送达",
        "event_recall": "召回",
        "event_shipment_cancel": "订单已取消",
        "temperature": "温度",
        "by": "记录方",
    },
}


def choose_language(query_lang: str | None, accept_language: str | None) -> str:
    """?lang= wins; else the first language in Accept-Language we have (by q-value); else English."""
    if query_lang in LANGUAGES:
        return query_lang
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()))
    for _q, _p, tag in sorted(ranked):
        base = tag.split("-")[0]
        if base in LANGUAGES:
            return base
    return "en"


_CLDR_LOCALES = {"en": "en", "zh": "zh_Hans_CN"}


def country_name(code: str, lang: str) -> str | None:
    """A country's name in the page's language, from CLDR (Babel); None for a code CLDR does not name."""
    from babel import Locale

    name = Locale.parse(_CLDR_LOCALES.get(lang, "en")).territories.get(code)
    return str(name) if name else None
