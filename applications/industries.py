"""Industry codes (GB/T 4754-2017) in words: an owner sees "服装批发（批发和零售业）", never "F5132".

The sections (门类) are complete; finer codes are named where the bank meets them (the sandbox registry's codes
and common SME trades). A code is named by its longest known prefix, so every valid code has a name.
"""

from django.utils.translation import gettext_lazy as _

SECTIONS = {
    "A": _("农、林、牧、渔业 agriculture, forestry, animal husbandry and fishery"),
    "B": _("采矿业 mining"),
    "C": _("制造业 manufacturing"),
    "D": _("电力、热力、燃气及水生产和供应业 utilities"),
    "E": _("建筑业 construction"),
    "F": _("批发和零售业 wholesale and retail"),
    "G": _("交通运输、仓储和邮政业 transport, storage and post"),
    "H": _("住宿和餐饮业 accommodation and catering"),
    "I": _("信息传输、软件和信息技术服务业 information technology"),
    "J": _("金融业 finance"),
    "K": _("房地产业 real estate"),
    "L": _("租赁和商务服务业 leasing and business services"),
    "M": _("科学研究和技术服务业 research and technical services"),
    "N": _("水利、环境和公共设施管理业 water, environment and public facilities"),
    "O": _("居民服务、修理和其他服务业 household, repair and other services"),
    "P": _("教育 education"),
    "Q": _("卫生和社会工作 health and social work"),
    "R": _("文化、体育和娱乐业 culture, sports and entertainment"),
    "S": _("公共管理、社会保障和社会组织 public administration"),
    "T": _("国际组织 international organisations"),
}

CODES = {
    "A0141": _("蔬菜种植 vegetable growing"),
    "C13": _("农副食品加工业 agricultural food processing"), "C1391": _("淀粉及淀粉制品制造 starch products"),
    "C14": _("食品制造业 food manufacturing"),
    "C17": _("纺织业 textiles"), "C1711": _("棉纺纱加工 cotton spinning"),
    "C18": _("纺织服装、服饰业 clothing"), "C1830": _("服饰制造 apparel manufacturing"),
    "C21": _("家具制造业 furniture"), "C2110": _("木质家具制造 wooden furniture"),
    "C29": _("橡胶和塑料制品业 rubber and plastics"), "C2927": _("日用塑料制品制造 household plastics"),
    "C33": _("金属制品业 metal products"), "C3311": _("金属结构制造 metal structures"),
    "C3360": _("金属表面处理及热处理加工 metal surface treatment"),
    "C39": _("计算机、通信和其他电子设备制造业 electronic equipment"),
    "C3981": _("电阻电容电感元件制造 electronic components"),
    "E47": _("房屋建筑业 building construction"), "E4790": _("其他房屋建筑业 other building construction"),
    "E50": _("建筑装饰、装修和其他建筑业 building decoration"), "E5012": _("住宅装饰和装修 home decoration"),
    "F51": _("批发业 wholesale"), "F5123": _("果品、蔬菜批发 fruit and vegetable wholesale"),
    "F5132": _("服装批发 clothing wholesale"), "F5174": _("五金产品批发 hardware wholesale"),
    "F52": _("零售业 retail"), "F5212": _("超级市场零售 supermarkets"),
    "G54": _("道路运输业 road transport"), "G543": _("道路货物运输 road freight"),
    "H61": _("住宿业 accommodation"), "H6110": _("旅游饭店 tourist hotels"),
    "H62": _("餐饮业 catering"), "H6210": _("正餐服务 restaurants"),
    "I65": _("软件和信息技术服务业 software and IT services"), "I6513": _("应用软件开发 application software"),
    "L72": _("商务服务业 business services"),
    "M75": _("科技推广和应用服务业 technology promotion services"),
}


def industry_name(code: str) -> str:
    """"服装批发（批发和零售业）" for F5132; the section alone when nothing finer is known; "" for no code."""
    code = (code or "").strip().upper()
    if not code:
        return ""
    section = SECTIONS.get(code[0])
    for end in range(len(code), 1, -1):
        name = CODES.get(code[:end])
        if name is not None:
            return f"{name}（{section}）" if section else str(name)
    return str(section) if section else code
