package synthetic

import (
	"fmt"
	"math/rand/v2"
)

// division is a county-level administrative division (GB/T 2260) in which enterprises register.
type division struct {
	code     string  // 6-digit division code
	province string  // e.g. 浙江省
	city     string  // e.g. 杭州市
	district string  // e.g. 西湖区
	short    string  // city name used in enterprise names, e.g. 杭州
	weight   float64 // share of enterprises
	risk     float64 // regional shift of the latent weakness
}

var divisions = []division{
	{"330106", "浙江省", "杭州市", "西湖区", "杭州", 0.14, -0.10},
	{"330108", "浙江省", "杭州市", "滨江区", "杭州", 0.10, -0.15},
	{"330203", "浙江省", "宁波市", "海曙区", "宁波", 0.10, -0.05},
	{"320505", "江苏省", "苏州市", "虎丘区", "苏州", 0.10, -0.05},
	{"440305", "广东省", "深圳市", "南山区", "深圳", 0.12, -0.05},
	{"310115", "上海市", "上海市", "浦东新区", "上海", 0.12, -0.10},
	{"510107", "四川省", "成都市", "武侯区", "成都", 0.09, 0.10},
	{"420106", "湖北省", "武汉市", "武昌区", "武汉", 0.08, 0.10},
	{"370102", "山东省", "济南市", "历下区", "济南", 0.07, 0.10},
	{"410105", "河南省", "郑州市", "金水区", "郑州", 0.08, 0.20},
}

// industry is a sector with its own size, revenue and risk profile and its sector word for names.
type industry struct {
	key       string
	nameZH    string
	word      []string // sector words in enterprise names
	weight    float64  // share of enterprises
	logEmp    float64  // mean log headcount
	revPerEmp float64  // median annual revenue per employee, CNY
	risk      float64  // sector shift of the latent weakness
	exporter  float64  // probability of customs registration
	polluter  float64  // probability of environmental records
}

// Industries, as the values of the custom industry field.
var industries = []industry{
	{"manufacturing", "制造业", []string{"机械制造", "精密机械", "电子科技", "塑业", "新材料", "五金制品"}, 0.22, 3.0, 650000, 0.05, 0.35, 0.60},
	{"wholesale_retail", "批发和零售业", []string{"贸易", "商贸", "百货", "供应链管理", "进出口"}, 0.24, 2.0, 1500000, 0.10, 0.18, 0.05},
	{"construction", "建筑业", []string{"建设工程", "建筑工程", "市政工程", "装饰工程"}, 0.10, 3.2, 700000, 0.20, 0.02, 0.35},
	{"transport", "交通运输业", []string{"物流", "运输", "货运代理"}, 0.06, 2.6, 450000, 0.15, 0.10, 0.10},
	{"agriculture", "农林牧渔业", []string{"农业开发", "生态农业", "种植", "养殖"}, 0.07, 2.2, 300000, 0.25, 0.04, 0.30},
	{"software_it", "信息技术服务业", []string{"信息技术", "网络科技", "软件", "数据科技"}, 0.09, 2.5, 550000, -0.15, 0.05, 0.00},
	{"hospitality", "住宿和餐饮业", []string{"餐饮管理", "酒店管理", "食品"}, 0.08, 2.3, 260000, 0.30, 0.00, 0.05},
	{"healthcare", "卫生和医药业", []string{"诊所", "门诊部", "医院", "大药房", "医药连锁", "医疗器械"}, 0.05, 2.4, 500000, -0.10, 0.03, 0.10},
	{"education", "教育业", []string{"教育科技", "培训学校", "文化教育"}, 0.03, 2.3, 280000, 0.20, 0.00, 0.00},
	{"business_services", "租赁和商务服务业", []string{"企业管理咨询", "商务服务", "人力资源"}, 0.06, 2.1, 400000, 0.00, 0.02, 0.00},
}

var surnames = []string{"王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高",
	"林", "何", "郭", "马", "罗", "梁", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "萧", "程", "曹", "袁", "邓"}

var givenMale = []string{"伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华", "飞",
	"斌", "建国", "志强", "国庆", "海波", "晓东", "文军", "永明", "俊杰", "宏伟", "建平"}

var givenFemale = []string{"芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "婷", "雪", "慧", "红", "梅",
	"秀英", "桂英", "晓燕", "丽华", "海燕", "雅琴", "春梅", "淑珍", "佳怡", "欣然"}

var tradeChars = []string{"恒", "达", "鑫", "瑞", "华", "盛", "宏", "泰", "丰", "源", "诚", "信", "嘉", "博", "远",
	"正", "通", "联", "创", "新", "佳", "和", "安", "汇", "金", "晟", "耀", "德", "润", "祥", "锦", "天"}

var roads = []string{"文三路", "学院路", "建设路", "人民路", "解放路", "中山路", "科技大道", "工业园路", "长江路",
	"黄河路", "滨江大道", "创新路", "和平路", "新华路", "青年路"}

// pick returns a uniformly chosen element.
func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// pickWeighted returns an index drawn with probability proportional to weight(i).
func pickWeighted(r *rand.Rand, n int, weight func(i int) float64) int {
	total := 0.0
	for i := range n {
		total += weight(i)
	}
	u := r.Float64() * total
	for i := range n {
		u -= weight(i)
		if u < 0 {
			return i
		}
	}
	return n - 1
}

// personName returns a plausible Chinese name.
func personName(r *rand.Rand, female bool) string {
	if female {
		return pick(r, surnames) + pick(r, givenFemale)
	}
	return pick(r, surnames) + pick(r, givenMale)
}

// tradeName returns a two-character trade name (字号).
func tradeName(r *rand.Rand) string {
	a := r.IntN(len(tradeChars))
	b := (a + 1 + r.IntN(len(tradeChars)-1)) % len(tradeChars)
	return tradeChars[a] + tradeChars[b]
}

// parcelCode returns a plausible land parcel code (宗地代码, GB/T 13923): division, street and
// village numbers, a two-letter land-type code and a sequence.
func parcelCode(r *rand.Rand, d *division) string {
	return d.code + fmt.Sprintf("%03d%03d", 1+r.IntN(20), 1+r.IntN(300)) + pick(r, []string{"JC", "JA", "GB"}) + fmt.Sprintf("%05d", 1+r.IntN(99999))
}

// provinceAbbrev returns the one-character abbreviation of a division's province.
func provinceAbbrev(d *division) string {
	switch d.province {
	case "浙江省":
		return "浙"
	case "江苏省":
		return "苏"
	case "广东省":
		return "粤"
	case "上海市":
		return "沪"
	case "四川省":
		return "川"
	case "湖北省":
		return "鄂"
	case "山东省":
		return "鲁"
	default:
		return "豫"
	}
}

// medicalKind returns what a healthcare enterprise is, from its sector word: a medical institution
// (with the health commission's institution type), a pharmacy, or neither (a device trader).
func medicalKind(word string) (institution, pharmacy bool, institutionType string) {
	switch word {
	case "诊所":
		return true, false, "clinic"
	case "门诊部":
		return true, false, "outpatient_department"
	case "医院":
		return true, false, "hospital"
	case "大药房", "医药连锁":
		return false, true, ""
	}
	return false, false, ""
}
